"""Encrypted aggregation of bank vectors: packing codec, encrypted vectors, serde, checks.

``packing`` quantises and packs values into Paillier plaintexts (no keys), ``secure_aggregation``
is the safe surface (encrypt, sum, decrypt), ``encrypted_vector``/``serde`` its wire message and
bytes, ``validation`` the receiver's checks, ``wide_sum`` exact sums of wide reals and
``shared_state`` the deterministic AES-SIV sealing of the banks' shared tree state. May import
``protocols.paillier``, ``protocols.errors``, ``protocols.byte_reader`` and the libraries of
:mod:`protocols`.
"""
