"""Paillier: the banks' key ceremony, fast encryption, CRT decryption, ciphertext maths.

Keys are ordinary :mod:`phe` keys; ``keys`` seals and wraps them, ``fast`` encrypts with
precomputed randomness, ``decrypt`` recovers plaintexts with the CRT (optionally in a process
pool) and ``matvec`` computes products of plain integers with ciphertexts. May import
``protocols.errors``, ``protocols.identity`` and the libraries of :mod:`protocols`.
"""
