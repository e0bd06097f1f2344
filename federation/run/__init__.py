"""Settings of a run and of a node: run configs (horizontal, vertical), node TOML, key files;
the files of a run folder (``folder.py``) and the typed ``results.json`` (``results.py``).

Each setting has one source of defaults here, read by the CLI, the Flower run config and the
launchers. May import ``federation.errors``, ``federation.data.partition``,
``federation.ml.gbdt.config`` (the tree settings validate
themselves), ``federation.steps.secure_sum`` (the summation schemes own their key-size rule; it refers to the
run config for type hints only) and ``protocols``; no flwr.
"""
