"""The node apps (Flower ClientApp): the bank (horizontal and vertical) and the credit center.

Thin over ``federation.steps``: each handler unpacks a request (``federation.wire``), calls a
step, packs the reply. May import ``federation`` and ``protocols``; never ``server`` nor
``fedcredit``.
"""
