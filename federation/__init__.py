"""The shared domain of fedcredit, imported by the node apps, the coordinator and the CLI.

Sub-packages: ``data`` (loading, validation, partitions, synthetic sets, USCC), ``ml`` (models,
preprocessing, training, metrics, binning), ``scorecard`` (points, grades, reason codes,
scoring), ``run`` (run settings, node TOML, key files), ``steps`` (each party's protocol steps as
plain functions and the summation scheme) and ``wire`` (the only module that knows Flower's
records: message types, record keys, request/reply builders). May import ``protocols`` and
third-party libraries; never ``clients``, ``server`` or ``fedcredit``, and only ``wire`` imports
flwr (``tests/test_layering.py``).
"""
