"""Vertical logistic regression with two Paillier keys and no arbiter: each party's steps.

Setting
-------
Rows are aligned (PSI) and in the same order at both parties. The bank holds labels
``y in {0, 1}`` and features ``X_B`` (plus the intercept), the credit center holds ``X_C``.
Each party has its own Paillier key pair (``PK_B/SK_B``, ``PK_C/SK_C``, 2048 bits) and its
own weights; the coordinator only relays messages.

Maths (Hardy et al. 2017, Taylor loss; FATE hetero-LR without arbiter)
----------------------------------------------------------------------
With ``u_B = X_B w_B + b`` and ``u_C = X_C w_C``, ``sigmoid(u) ~ 0.5 + u/4`` gives the
residual ``d = (u_B + u_C)/4 + 0.5 - y = d_B + u_C/4`` with ``d_B = u_B/4 + 0.5 - y``, and the
gradients ``g_B = X_B^T d / m``, ``g_C = X_C^T d / m`` over a batch of ``m`` rows. Per batch:

1. bank -> center: ``[[d_B]]_B`` (its own key).        2. center -> bank: ``[[u_C]]_C``.
3. center: ``[[S_C]]_B = (X_C^T [[d_B]]_B)^4 * (1 + n_B X_C^T u_C)`` (so ``S_C = 4 X_C^T d``),
   packs the sums ~10 per ciphertext and sends ``[[S_C + r_C]]_B``.
4. bank: ``[[S_B]]_C = X_B^T [[u_C]]_C * (1 + n_C 4 X_B^T d_B)`` (so ``S_B = 4 X_B^T d``),
   packed likewise, and sends ``[[S_B + r_B]]_C``.
5. each party decrypts the other's masked sums with its own key and returns them.
6. each owner subtracts its masks, ``g = S / (4 m)``, adds ``l2 * w`` (not on the
   intercept) and updates ``w <- w - learning_rate * g``.

All values are fixed point (features ``2**-6``, values ``2**-32``), so ``S`` carries the
scale :data:`SUM_SCALE`; the intercept is a constant feature of the bank.

Steps 1 and 2, 3 and 4, 5 and 5, 6 and 6 run in parallel at the two parties. Products
``X^T [[v]]`` use quantised features and the bucket method of
:mod:`protocols.paillier.matvec`; encodings are in :mod:`protocols.vertical_lr.encoding`,
the agreed settings in :mod:`protocols.vertical_lr.config`, messages in
:mod:`protocols.vertical_lr.messages`, the protected scoring path in
:mod:`protocols.vertical_lr.scoring`, the one-process driver in :mod:`protocols.vertical_lr.local`.

Security
--------
Semi-honest bank, center and coordinator, no collusion; Paillier semantic security (DCR).
Per-sample values (``d_B``, ``u_C``, ``y``) leave their owner only encrypted under the
owner's key. Each gradient sum is masked by ``r`` uniform over 128 more bits than the
sum can have, so the decrypting peer and the coordinator see values within statistical
distance ``2**-127`` of independent of the sums. The masked ciphertexts go back to the key
holder, who can read their randomness too; they are re-randomised by a uniform ``r**n``
(:mod:`protocols.paillier.rerandomize`; the fast ``hs**a`` would leave a character of the key
holder's own randomness, tied to the other side's features). Each party learns its own
gradient, which is the known aggregate leak of this scheme: per batch the bank learns
``X_B^T u_C`` and the center ``X_C^T d`` (linear combinations of the other side's per-sample
values). Batches must therefore hold many more rows than either party has columns, and the
first batch (zero weights, an exact knapsack over the labels) enough rows that the knapsack
stays underdetermined (:func:`~protocols.vertical_lr.config.min_batch_rows`); repeated
epochs leak more such aggregates.

Deviating peer: the opening party checks the kind, key, batch, ciphertext count and that
every decrypted plaintext holds no bits beyond the step's masked slots
(:func:`~protocols.vertical_lr.encoding.check_masked_slots`,
:class:`~protocols.errors.PlaintextShapeError`), so a peer cannot have it decrypt its own
per-row ciphertexts packed into spare bits. What a deviating peer puts inside the allowed
slots (a chosen linear combination of the opener's values: about ``k * slot_bits / 35``
residuals per batch) cannot be told from a masked sum;
closing that needs proofs of correct computation or secret-shared gradients
(``docs/security.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gmpy2
import numpy as np
from gmpy2 import mpz
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import (
    RandomizerTable,
    RandomSource,
    encrypt_packed,
    key_holder_table_for,
)
from protocols.paillier.keys import key_fingerprint
from protocols.paillier.matvec import add_plaintexts, encrypted_matvec, pack_ciphertexts
from protocols.paillier.rerandomize import rerandomize_for_key_holder
from protocols.vertical_lr.config import MIN_BATCH_ROWS, VerticalLRConfig
from protocols.vertical_lr.encoding import (
    FEATURE_FRAC_BITS,
    VALUE_FRAC_BITS,
    check_masked_slots,
    dequantize_features,
    draw_slot_masks,
    encode_fixed,
    gradient_slot_layout,
    mask_plaintexts,
    plain_matvec,
    quantize_features,
    unmask_slots,
)
from protocols.vertical_lr.messages import (
    KIND_BANK_GRADIENT_OPENED,
    KIND_BANK_MASKED_GRADIENT,
    KIND_BANK_RESIDUALS,
    KIND_CENTER_GRADIENT_OPENED,
    KIND_CENTER_MASKED_GRADIENT,
    KIND_CENTER_PARTIALS,
    MaskedGradientValues,
    VerticalCiphertexts,
    validate_masked_values,
    validate_vertical_ciphertexts,
)

__all__ = [
    "ROLE_BANK", "ROLE_CENTER", "MIN_BATCH_ROWS",
    "VerticalLRConfig", "VerticalParty", "VerticalLRState", "BatchSecrets", "make_bank_party",
    "make_center_party", "initial_state", "bank_residual_step", "center_partial_step",
    "center_gradient_step", "bank_gradient_step", "bank_open_center_gradient",
    "center_open_bank_gradient", "bank_update_step", "center_update_step",
]

ROLE_BANK = "bank"
ROLE_CENTER = "center"
#: ``S = 4 * 2**(6 + 32) * X^T d`` for the exact gradient sum ``X^T d``.
SUM_SCALE = 4 * 2 ** (FEATURE_FRAC_BITS + VALUE_FRAC_BITS)


# ------------------------------------------------------------------ config, parties, state
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class VerticalParty:
    """One party's fixed inputs: quantised features, labels (bank), keys, config.

    Secret: holds the private key and the raw data; never send it anywhere.
    """

    role: str
    config: VerticalLRConfig
    features: np.ndarray
    labels: np.ndarray | None
    private_key: PaillierPrivateKey
    peer_public_key: PaillierPublicKey
    short_exponent: bool = False

    def __repr__(self) -> str:
        return f"VerticalParty({self.role}, {self.features.shape}, <secret>)"

    @property
    def public_key(self) -> PaillierPublicKey:
        """This party's own public key."""
        return self.private_key.public_key


def make_bank_party(x_bank: np.ndarray, y: np.ndarray, *, config: VerticalLRConfig,
                    private_key: PaillierPrivateKey, peer_public_key: PaillierPublicKey,
                    short_exponent: bool = False) -> VerticalParty:
    """Bank inputs: standardised ``x_bank`` (quantised here, intercept column added), 0/1 ``y``.

    ``short_exponent=True`` opts into the faster encryption of
    :mod:`protocols.paillier.fast` (extra short-exponent assumption).
    """
    xq = quantize_features(x_bank)
    labels = np.asarray(y, dtype=np.float64).ravel()
    if xq.shape != (config.n_rows, config.n_bank_features) or labels.shape != (config.n_rows,):
        raise ValueError(f"bank data of shape {xq.shape} / {labels.shape} does not match the "
                         f"config ({config.n_rows} rows, {config.n_bank_features} features)")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    ones = np.full((xq.shape[0], 1), 1 << FEATURE_FRAC_BITS, dtype=np.int64)
    return VerticalParty(ROLE_BANK, config, np.hstack([ones, xq]), labels, private_key,
                         peer_public_key, short_exponent)


def make_center_party(x_center: np.ndarray, *, config: VerticalLRConfig,
                      private_key: PaillierPrivateKey, peer_public_key: PaillierPublicKey,
                      short_exponent: bool = False) -> VerticalParty:
    """Center inputs: standardised ``x_center``, quantised here."""
    xq = quantize_features(x_center)
    if xq.shape != (config.n_rows, config.n_center_features):
        raise ValueError(f"center data of shape {xq.shape} does not match the config "
                         f"({config.n_rows} rows, {config.n_center_features} features)")
    return VerticalParty(ROLE_CENTER, config, xq, None, private_key, peer_public_key,
                         short_exponent)


@dataclass(frozen=True, slots=True, eq=False)
class VerticalLRState:
    """One party's weights (bank: ``[intercept, w_B...]``, center: ``w_C``) and update count."""

    role: str
    weights: np.ndarray
    updates: int = 0

    def __post_init__(self) -> None:
        weights = np.array(self.weights, dtype=np.float64)
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)


def initial_state(party: VerticalParty) -> VerticalLRState:
    """Zero weights for ``party`` (bank: intercept first)."""
    return VerticalLRState(party.role, np.zeros(party.features.shape[1]))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class BatchSecrets:
    """What a party keeps between the steps of one batch (never sent)."""

    role: str
    epoch: int
    batch: int
    rows: np.ndarray
    own_ints: tuple[int, ...]
    masks: tuple[int, ...] = field(default=())

    def __repr__(self) -> str:
        return f"BatchSecrets({self.role}, epoch={self.epoch}, batch={self.batch}, <secret>)"


# ------------------------------------------------------------------ generic steps
def _check_role(party: VerticalParty, role: str,
                *held: VerticalLRState | BatchSecrets) -> None:
    if party.role != role:
        raise ValueError(f"this step belongs to the {role}, not the {party.role}")
    for item in held:
        if item.role != role:
            raise ValueError(f"the {role} step got the {item.role}'s state or secrets")


def _encrypt_own(party: VerticalParty, state: VerticalLRState, epoch: int, batch: int,
                 kind: str, rng: RandomSource | None,
                 table: RandomizerTable | None) -> tuple[VerticalCiphertexts, BatchSecrets]:
    rows = party.config.batch_rows(epoch, batch)
    u = dequantize_features(party.features[rows]) @ state.weights
    values = u if party.labels is None else 0.25 * u + 0.5 - party.labels[rows]
    n = int(party.public_key.n)
    plaintexts = encode_fixed(values, n)
    if table is None:  # the party encrypts under its own key: the key holder's CRT table
        table = key_holder_table_for(party.private_key, short_exponent=party.short_exponent)
    cts = encrypt_packed(plaintexts, party.public_key, rng=rng, table=table,
                         short_exponent=party.short_exponent)
    own = tuple(m if m <= n // 2 else m - n for m in plaintexts)
    msg = VerticalCiphertexts(kind, key_fingerprint(party.public_key), party.config.run_id,
                              epoch, batch, len(rows), tuple(cts))
    return msg, BatchSecrets(party.role, epoch, batch, rows, own)


def _masked_gradient(party: VerticalParty, secrets: BatchSecrets, received: VerticalCiphertexts,
                     *, kind_in: str, kind_out: str, enc_scale: int, plain_scale: int,
                     rng: RandomSource | None) -> tuple[VerticalCiphertexts, BatchSecrets]:
    peer = party.peer_public_key
    validate_vertical_ciphertexts(received, public_key=peer, kind=kind_in,
                                  run_id=party.config.run_id, epoch=secrets.epoch,
                                  batch=secrets.batch, length=len(secrets.rows))
    xq = party.features[secrets.rows]
    nsq = mpz(peer.nsquare)
    sums = encrypted_matvec(xq, received.ciphertexts, peer)
    if enc_scale != 1:
        sums = [int(gmpy2.powmod(mpz(c), enc_scale, nsq)) for c in sums]
    sums = add_plaintexts(sums, [plain_scale * s for s in plain_matvec(xq, secrets.own_ints)],
                          peer)
    layout = gradient_slot_layout(len(secrets.rows), int(peer.n))
    packed = pack_ciphertexts(sums, layout.slot_bits, layout.per_plaintext, peer)
    masks = draw_slot_masks(len(sums), layout, rng)
    # The masks hide S; a uniform r**n (not the subgroup hs**a) hides the randomness of the
    # key holder's own ciphertexts inside the product from the key holder.
    masked = tuple(rerandomize_for_key_holder(
        add_plaintexts(packed, mask_plaintexts(masks, layout), peer), peer, rng=rng))
    msg = VerticalCiphertexts(kind_out, key_fingerprint(peer), party.config.run_id,
                              secrets.epoch, secrets.batch, len(sums), masked)
    return msg, replace(secrets, masks=masks)


def _open_masked(party: VerticalParty, received: VerticalCiphertexts, *, kind_in: str,
                 kind_out: str, epoch: int, batch: int, length: int) -> MaskedGradientValues:
    rows = len(party.config.batch_rows(epoch, batch))
    layout = gradient_slot_layout(rows, int(party.public_key.n))
    validate_vertical_ciphertexts(received, public_key=party.public_key, kind=kind_in,
                                  run_id=party.config.run_id, epoch=epoch, batch=batch,
                                  length=length, n_ciphertexts=layout.n_plaintexts(length))
    values = decrypt_raw_many(received.ciphertexts, party.private_key, processes=1)
    check_masked_slots(values, length, layout, kind=kind_in)
    return MaskedGradientValues(kind_out, key_fingerprint(party.public_key),
                                party.config.run_id, epoch, batch, tuple(values))


def _apply_gradient(party: VerticalParty, state: VerticalLRState, secrets: BatchSecrets,
                    reply: MaskedGradientValues, *, kind: str) -> VerticalLRState:
    peer = party.peer_public_key
    if not secrets.masks:
        raise ValueError("no masks for this batch yet: run the gradient step before the update")
    layout = gradient_slot_layout(len(secrets.rows), int(peer.n))
    validate_masked_values(reply, public_key=peer, kind=kind, run_id=party.config.run_id,
                           epoch=secrets.epoch, batch=secrets.batch,
                           length=layout.n_plaintexts(len(secrets.masks)))
    sums = np.array(unmask_slots(reply.values, secrets.masks, layout), dtype=np.float64)
    gradient = sums / (SUM_SCALE * len(secrets.rows))
    penalty = party.config.l2 * np.asarray(state.weights)
    if party.role == ROLE_BANK:
        penalty[0] = 0.0  # no penalty on the intercept
    weights = state.weights - party.config.learning_rate * (gradient + penalty)
    return VerticalLRState(state.role, weights, state.updates + 1)


# ------------------------------------------------------------------ bank steps
def bank_residual_step(party: VerticalParty, state: VerticalLRState, *, epoch: int, batch: int,
                       rng: RandomSource | None = None, table: RandomizerTable | None = None,
                       ) -> tuple[VerticalCiphertexts, BatchSecrets]:
    """Step 1 (bank): ``[[d_B]]_B`` with ``d_B = u_B/4 + 0.5 - y`` for the batch rows.

    Returns the message for the center and the secrets to keep for steps 4 and 6.
    ``rng`` (exponents) defaults to system randomness; ``table`` to the cached one.

    Raises
    ------
    PackingOverflowError
        A residual is not finite or exceeds ``VALUE_LIMIT`` (lower the learning rate).
    ValueError
        Batches too small for the first batch's label knapsack to stay underdetermined
        (:meth:`~protocols.vertical_lr.config.VerticalLRConfig.check_label_knapsack`).
    """
    _check_role(party, ROLE_BANK, state)
    party.config.check_label_knapsack()
    return _encrypt_own(party, state, epoch, batch, KIND_BANK_RESIDUALS, rng, table)


def bank_gradient_step(party: VerticalParty, secrets: BatchSecrets,
                       partials: VerticalCiphertexts, *, rng: RandomSource | None = None,
                       ) -> tuple[VerticalCiphertexts, BatchSecrets]:
    """Step 4 (bank): ``[[S_B + r_B]]_C`` from the center's ``[[u_C]]_C``.

    ``S_B = X_B^T u_C + 4 X_B^T d_B`` (fixed point), packed ~10 sums per ciphertext, each
    masked by ``r_B`` (128 bits wider than the sums, see
    :func:`~protocols.vertical_lr.encoding.gradient_slot_layout`). Returns
    the message for the center and the secrets with the masks (keep them for step 6).

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    InvalidCiphertextError
        ``partials`` is not the center's message for this batch.
    """
    _check_role(party, ROLE_BANK, secrets)
    return _masked_gradient(party, secrets, partials, kind_in=KIND_CENTER_PARTIALS,
                            kind_out=KIND_BANK_MASKED_GRADIENT, enc_scale=1, plain_scale=4,
                            rng=rng)


def bank_open_center_gradient(party: VerticalParty, masked: VerticalCiphertexts, *,
                              epoch: int, batch: int) -> MaskedGradientValues:
    """Step 5 (bank): decrypt the center's ``[[S_C + r_C]]_B``; the values stay masked.

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    InvalidCiphertextError
        ``masked`` is not the center's message for this batch.
    PlaintextShapeError
        A decrypted plaintext holds more than the center's masked slots (a deviating
        center); nothing is returned.
    """
    _check_role(party, ROLE_BANK)
    return _open_masked(party, masked, kind_in=KIND_CENTER_MASKED_GRADIENT,
                        kind_out=KIND_CENTER_GRADIENT_OPENED, epoch=epoch, batch=batch,
                        length=party.config.n_center_features)


def bank_update_step(party: VerticalParty, state: VerticalLRState, secrets: BatchSecrets,
                     opened: MaskedGradientValues) -> VerticalLRState:
    """Step 6 (bank): unmask ``S_B``, ``g_B = S_B / (4 m)``, update weights and intercept.

    Raises
    ------
    PackingOverflowError
        The unmasked sums are implausibly large (wrong masks, key or tampered reply).
    """
    _check_role(party, ROLE_BANK, state, secrets)
    return _apply_gradient(party, state, secrets, opened, kind=KIND_BANK_GRADIENT_OPENED)


# ------------------------------------------------------------------ center steps
def center_partial_step(party: VerticalParty, state: VerticalLRState, *, epoch: int,
                        batch: int, rng: RandomSource | None = None,
                        table: RandomizerTable | None = None,
                        ) -> tuple[VerticalCiphertexts, BatchSecrets]:
    """Step 2 (center): ``[[u_C]]_C`` with ``u_C = X_C w_C`` for the batch rows."""
    _check_role(party, ROLE_CENTER, state)
    return _encrypt_own(party, state, epoch, batch, KIND_CENTER_PARTIALS, rng, table)


def center_gradient_step(party: VerticalParty, secrets: BatchSecrets,
                         residuals: VerticalCiphertexts, *, rng: RandomSource | None = None,
                         ) -> tuple[VerticalCiphertexts, BatchSecrets]:
    """Step 3 (center): ``[[S_C + r_C]]_B`` from the bank's ``[[d_B]]_B``.

    ``S_C = 4 X_C^T d_B + X_C^T u_C`` (fixed point), packed and masked as in
    :func:`bank_gradient_step`. Returns the message for the bank and the secrets with the
    masks (keep them for step 6).

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    InvalidCiphertextError
        ``residuals`` is not the bank's message for this batch.
    """
    _check_role(party, ROLE_CENTER, secrets)
    return _masked_gradient(party, secrets, residuals, kind_in=KIND_BANK_RESIDUALS,
                            kind_out=KIND_CENTER_MASKED_GRADIENT, enc_scale=4, plain_scale=1,
                            rng=rng)


def center_open_bank_gradient(party: VerticalParty, masked: VerticalCiphertexts, *,
                              epoch: int, batch: int) -> MaskedGradientValues:
    """Step 5 (center): decrypt the bank's ``[[S_B + r_B]]_C``; the values stay masked.

    Raises
    ------
    UnexpectedMessageError, KeyMismatchError, StaleRoundError, VectorLengthError,
    InvalidCiphertextError
        ``masked`` is not the bank's message for this batch.
    PlaintextShapeError
        A decrypted plaintext holds more than the bank's masked slots (a deviating bank);
        nothing is returned.
    """
    _check_role(party, ROLE_CENTER)
    return _open_masked(party, masked, kind_in=KIND_BANK_MASKED_GRADIENT,
                        kind_out=KIND_BANK_GRADIENT_OPENED, epoch=epoch, batch=batch,
                        length=party.config.n_bank_features + 1)


def center_update_step(party: VerticalParty, state: VerticalLRState, secrets: BatchSecrets,
                       opened: MaskedGradientValues) -> VerticalLRState:
    """Step 6 (center): unmask ``S_C``, ``g_C = S_C / (4 m)``, update ``w_C``."""
    _check_role(party, ROLE_CENTER, state, secrets)
    return _apply_gradient(party, state, secrets, opened, kind=KIND_CENTER_GRADIENT_OPENED)
