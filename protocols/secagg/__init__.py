"""Pairwise masking of bank updates (SecAgg+, Bell et al. 2020).

Modules: :mod:`~protocols.secagg.shamir` (t-of-n secret sharing),
:mod:`~protocols.secagg.prg` (mask expansion and the ring the masks live in),
:mod:`~protocols.secagg.graph` (the public k-regular neighbour graph),
:mod:`~protocols.secagg.config` (round parameters), :mod:`~protocols.secagg.derivation`
(pairwise keys and mask labels), :mod:`~protocols.secagg.messages` (wire messages and codecs),
:mod:`~protocols.secagg.client` (a bank's steps), :mod:`~protocols.secagg.unmasking`
(the coordinator's steps) and :mod:`~protocols.secagg.paillier_masking` (masks under Paillier).

May import: the standard library, numpy, gmpy2, phe, cryptography and other ``protocols``
packages (never flwr, torch, pandas or the layers above).
"""
