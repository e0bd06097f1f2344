"""ECDH private set intersection over X25519 (the alignment step of a vertical run).

``blinding`` is the raw maths (hash to point, blind), ``messages`` the three wire messages and
their bytes, ``ecdh`` the protocol steps and the safe recipe :func:`protocols.psi.ecdh.psi_intersect`.
May import ``protocols.errors``, ``protocols.byte_reader`` and the libraries of :mod:`protocols`.
"""
