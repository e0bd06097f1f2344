"""Settings of a run and of a node: run configs (horizontal, vertical), node TOML, key files.

Each setting has one source of defaults here, read by the CLI, the Flower run config and the
launchers. May import ``federation.errors``, ``federation.data.partition`` and ``protocols``; no
flwr.
"""
