"""Real deployment on Flower's deployment engine (SuperLink, SuperNodes, ``flwr run``).

* ``certs``: the federation's CA, the SuperLink's TLS certificate, node authentication keys.
* ``tls_check``: one verified TLS handshake with the coordinator, with a clear error.
* ``flower_commands``: the ``flower-superlink`` / ``flower-supernode`` / ``flwr`` command lines
  and environment (no runtime dependency installation, no telemetry).
* ``node_runner``: ``fedcredit node`` - validate ``node.toml`` (``federation.run.node_config``),
  check TLS, become the SuperNode. ``register_nodes``: register node keys in one CLI process.
* ``supernode_main``, ``clientapp_runner``, ``node_pacing``: the SuperNode a node runs on
  Flower 1.42.x (one long-lived ClientApp process woken per message, short growing waits
  instead of fixed sleeps); stock ``flower-supernode`` elsewhere.
* ``processes``: start processes and make sure every one (and every helper) is stopped.
* ``launch_plan``, ``local_parties``, ``app_bundle``, ``local_federation``: the local launcher
  (``scripts/local_federation.py``).

See docs/deployment.md.

May import anything of ours: it is part of the composition root.
"""
