"""Who a party is: X25519 identity keys, Ed25519 signed updates, sealed key envelopes.

``x25519`` holds a bank's identity key (to receive a wrapped Paillier key), ``signing`` signs
round-bound updates and guards against replays, ``envelopes`` seals secrets under a passphrase
or for a recipient. May import ``protocols.errors`` and the libraries of :mod:`protocols`.
"""
