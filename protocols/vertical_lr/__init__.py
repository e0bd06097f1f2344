"""Vertical logistic regression with two Paillier keys and no arbiter.

``config`` holds the public settings, ``encoding`` the integer encodings (no keys), ``steps`` each
party's protocol steps, ``messages`` the wire messages and their checks, ``scoring`` protected
held-out scoring and ``local`` both parties in one process (tests, benchmarks). May import
``protocols.paillier``, ``protocols.errors``, ``protocols.byte_reader`` and the libraries of
:mod:`protocols`.
"""
