"""Cryptography and protocol steps of fedcredit.

Pure functions over numbers and bytes: numpy, gmpy2, phe and cryptography only.
This package never imports flwr or torch (a test checks it).
"""
