"""Cryptography and protocol steps of fedcredit, over numbers and bytes only.

Sub-packages: ``paillier`` (keys, fast encryption, CRT decryption, ciphertext maths),
``aggregation`` (packing codec, encrypted vectors, their serde, validation, wide sums),
``identity`` (X25519 identities, Ed25519 signatures, sealed key envelopes), ``psi`` (ECDH-PSI),
``vertical_lr`` (two-key Paillier vertical logistic regression), ``secureboost`` (vertical
SecureBoost: packed per-row gradients, encrypted bin sums, the center's split lookup) and ``woe``
(secure WOE/IV binning); ``errors`` and ``byte_reader`` are shared by all of them. May import the standard
library, numpy, gmpy2, phe and cryptography only: never flwr, torch, pandas nor any other
package of ours (``tests/test_layering.py`` checks it).
"""
