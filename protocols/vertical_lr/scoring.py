"""Protected scoring with a vertical logistic regression: the center's part travels encrypted.

Protocol
--------
For rows aligned at both parties (same order):

1. center: ``u_C = X_C w_C`` (quantised features, as in training), packed 31 values per
   plaintext (64-bit fixed-point slots, :func:`protocols.vertical_lr.encoding.pack_slots`)
   and encrypted under the **bank's** key ``PK_B`` -> message ``center-scores``.
2. bank: decrypts, unpacks and adds its own part: ``logit = b + X_B w_B + u_C``,
   ``probability = 1 / (1 + exp(-logit))``.

No homomorphic operation is needed, so packing is safe and ~30x cheaper than one
ciphertext per entity.

Security
--------
Semi-honest parties and coordinator, no collusion; Paillier semantic security (DCR). The
coordinator relays only ciphertexts. The bank learns each scored entity's partial score
``u_C`` (it needs it to output the joint score; FATE's hetero-LR prediction reveals the
same), but neither ``w_C`` nor ``X_C``. The center learns nothing about the bank's side.
Scoring many entities repeatedly with fixed weights reveals nothing beyond these ``u_C``.
"""

from __future__ import annotations

import numpy as np
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import RandomizerTable, RandomSource, encrypt_packed
from protocols.paillier.keys import key_fingerprint
from protocols.vertical_lr.encoding import dequantize_features, pack_slots, quantize_features, unpack_slots
from protocols.vertical_lr.messages import (
    KIND_CENTER_SCORES,
    VerticalCiphertexts,
    validate_vertical_ciphertexts,
)

__all__ = ["partial_scores", "center_score_step", "bank_score_step", "sigmoid"]


def partial_scores(x: np.ndarray, weights: np.ndarray, *, intercept: bool) -> np.ndarray:
    """``u = X w`` on quantised features; with ``intercept`` the first weight is ``b``.

    Parameters
    ----------
    x : numpy.ndarray
        Standardised features (rows x features), prepared like the training data.
    weights : numpy.ndarray
        The party's weights (bank: ``[b, w_B...]``, center: ``w_C``).
    intercept : bool
        True for the bank.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    xf = dequantize_features(quantize_features(x))
    if xf.shape[1] + int(intercept) != w.size:
        raise ValueError(f"{xf.shape[1]} features do not match {w.size} weights")
    return xf @ w[1:] + w[0] if intercept else xf @ w


def center_score_step(x_center: np.ndarray, weights: np.ndarray, *,
                      bank_public_key: PaillierPublicKey, run_id: str, batch: int = 0,
                      rng: RandomSource | None = None, table: RandomizerTable | None = None,
                      short_exponent: bool = False) -> VerticalCiphertexts:
    """Step 1 (center): encrypt its partial scores under the bank's key, packed.

    ``batch`` numbers the chunks of a large scoring job (``epoch`` is always 0).

    Raises
    ------
    PackingOverflowError
        A partial score is not finite or exceeds ``VALUE_LIMIT``.
    """
    scores = partial_scores(x_center, weights, intercept=False)
    plaintexts = pack_slots(scores, int(bank_public_key.n))
    cts = encrypt_packed(plaintexts, bank_public_key, rng=rng, table=table,
                         short_exponent=short_exponent)
    return VerticalCiphertexts(KIND_CENTER_SCORES, key_fingerprint(bank_public_key), run_id,
                               0, batch, len(scores), tuple(cts))


def bank_score_step(x_bank: np.ndarray, weights: np.ndarray, scores: VerticalCiphertexts, *,
                    private_key: PaillierPrivateKey, run_id: str,
                    batch: int = 0) -> np.ndarray:
    """Step 2 (bank): decrypt the center's part and return the joint logits.

    Apply :func:`sigmoid` for probabilities.

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    InvalidCiphertextError
        ``scores`` is not the center's scoring message for these rows.
    PackingOverflowError
        A plaintext does not unpack (another key or a tampered message).
    """
    own = partial_scores(x_bank, weights, intercept=True)
    public_key = private_key.public_key
    validate_vertical_ciphertexts(scores, public_key=public_key, kind=KIND_CENTER_SCORES,
                                  run_id=run_id, epoch=0, batch=batch, length=own.size)
    plaintexts = decrypt_raw_many(scores.ciphertexts, private_key, processes=1)
    logits: np.ndarray = own + unpack_slots(plaintexts, own.size, int(public_key.n))
    return logits


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, numerically stable for large ``|z|``."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out
