"""Secure WOE/IV binning: the center bins its features against the bank's encrypted labels.

``secure_binning`` holds the steps and messages (the center never sees a label, the bank never
sees a center row). May import ``protocols.paillier``, ``protocols.errors``,
``protocols.byte_reader`` and the libraries of :mod:`protocols`.
"""
