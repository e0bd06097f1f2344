"""The composition root: the ``fedcredit`` CLI, launchers, baselines, reports.

The only package that imports both ``clients`` and ``server``: it wires them into Flower's
simulation engine or a local deployment. May import everything of ours.
"""
