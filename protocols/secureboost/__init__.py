"""Vertical SecureBoost steps over numbers: the bank (labels) and the credit center (features).

``packing`` holds the integer encodings (a row's gradient and hessian in one Paillier plaintext;
several bin sums in one ciphertext for the way back), ``steps`` each party's protocol steps (the
bank encrypts, the center sums per node, feature and bin and compresses, the bank opens; the
center keeps its thresholds in its own lookup table and answers which branch a row takes).
May import ``protocols.paillier``, ``protocols.errors`` and the libraries of :mod:`protocols`.
"""
