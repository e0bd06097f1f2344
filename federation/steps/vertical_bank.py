"""The bank's own steps of a vertical run, as plain functions over its own data and state.

The bank holds the labels: it initiates the ECDH-PSI (stages 1 and 3), encrypts its labels
under its own key and opens the per-bin label counts for the IV table (binning stages 1 and 3),
and finishes held-out scoring (adds its partial scores to the center's decrypted ones and
reports AUC/KS and the score histograms only). The steps both parties run are in
:mod:`federation.steps.vertical_party`, the center's in :mod:`federation.steps.vertical_center`.

Security: semi-honest parties and coordinator, no collusion. The bank sends blinded points,
ciphertexts under its own key and public results (intersection size, AUC/KS, per-class score
histograms, IV per feature); its IDs, labels and rows never leave it, and the center's per-row
scores it decrypts stay inside :func:`held_out_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from federation.data.vertical_data import AlignedParty
from federation.ml.calibration import calibration_counts
from federation.ml.metrics import ks_statistic, roc_auc, score_histograms
from federation.ml.vertical_binning import iv_from_counts, local_iv
from federation.steps.vertical_party import labels_of, received_ciphertexts
from protocols.psi import ecdh as psi
from protocols.vertical_lr.scoring import bank_score_step, sigmoid
from protocols.vertical_lr.steps import VerticalParty
from protocols.woe.secure_binning import (
    decrypt_bin_counts,
    encrypt_labels,
    encrypted_bin_counts_from_bytes,
    encrypted_labels_to_bytes,
)


@dataclass(frozen=True, slots=True)
class HeldOutReport:
    """What the bank reports of held-out scoring: AUC, KS and per-class score histograms."""

    auc: float
    ks: float
    hist_bad: list[int]
    hist_good: list[int]
    cal_bad: list[int]
    """Counts of the calibration half of the held-out rows (:mod:`federation.ml.calibration`)."""
    cal_good: list[int]


def psi_start(ids: Sequence[psi.Identifier]) -> tuple[psi.PsiInitiatorState, bytes]:
    """PSI stage 1: a fresh session and the bank's blinded own set (state kept for stage 3)."""
    state, out = psi.initiator_start(ids, psi.new_psi_session(), workers=1)
    return state, psi.psi_message_to_bytes(out)


def psi_finish(state: psi.PsiInitiatorState, received: bytes) -> tuple[psi.PsiResult, bytes]:
    """PSI stage 3: the intersection (kept) from the center's reply, and the center's set
    double-blinded for its stage 4."""
    result, out = psi.initiator_finish(state, psi.psi_message_from_bytes(received), workers=1)
    return result, psi.psi_message_to_bytes(out)


def encrypted_labels(aligned: AlignedParty, party: VerticalParty, *,
                     short_exponent: bool) -> bytes:
    """Binning stage 1: the training labels, encrypted under the bank's own key."""
    labels = encrypt_labels(labels_of(aligned.y_train), public_key=party.public_key,
                            run_id=party.config.run_id, short_exponent=short_exponent)
    return encrypted_labels_to_bytes(labels)


def iv_table(aligned: AlignedParty, party: VerticalParty, received: bytes, *, n_bins: int,
             method: str) -> dict[str, float]:
    """Binning stage 3: decrypt the center's per-bin label sums and return the IV of every
    column of both parties (the bank's own columns binned locally)."""
    run_id = party.config.run_id
    counts = encrypted_bin_counts_from_bytes(received, public_key=party.public_key,
                                             run_id=run_id)
    opened = decrypt_bin_counts(counts, private_key=party.private_key, run_id=run_id,
                                n_rows=party.config.n_rows)
    iv = local_iv(aligned.train_table, labels_of(aligned.y_train), n_bins=n_bins,
                  method=method)
    iv.update({name: iv_from_counts(bad, good) for name, (bad, good) in opened.items()})
    return iv


def held_out_scores(aligned: AlignedParty, party: VerticalParty, weights: np.ndarray,
                    received: bytes) -> HeldOutReport:
    """Scoring, bank side: decrypt the center's partial scores, add the own part and report
    AUC/KS and the score histograms of the held-out rows (nothing per row)."""
    logits = bank_score_step(aligned.x_test, weights, received_ciphertexts(received),
                             private_key=party.private_key, run_id=party.config.run_id)
    p = sigmoid(logits)
    y_test = labels_of(aligned.y_test)
    bad, good = score_histograms(y_test, p)
    return HeldOutReport(roc_auc(y_test, p), ks_statistic(y_test, p),
                         [int(v) for v in bad], [int(v) for v in good],
                         *calibration_counts(y_test, p))
