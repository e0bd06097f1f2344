"""The coordinator (Flower ServerApp): workflows, reply admission, checkpoints, audit log.

Talks to the nodes only through ``federation.wire``. May import ``federation`` and ``protocols``;
never ``clients`` nor ``fedcredit``.
"""
