"""The credit center's own steps of a vertical run, as plain functions over its own data.

The center holds no labels: it answers the bank's ECDH-PSI (stages 2 and 4), sums the bank's
encrypted labels per bin of its own columns (binning stage 2), and starts held-out scoring by
encrypting its partial scores under the bank's key. The steps both parties run are in
:mod:`federation.steps.vertical_party`, the bank's in :mod:`federation.steps.vertical_bank`.

Security: semi-honest parties and coordinator, no collusion. The center sends blinded points
and ciphertexts under the bank's public key only (label sums per bin, partial scores); it
cannot decrypt what the bank sends it, and its IDs and rows never leave it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from federation.data.vertical_data import AlignedParty
from federation.ml.vertical_binning import bin_table
from protocols.psi import ecdh as psi
from protocols.vertical_lr.messages import vertical_ciphertexts_to_bytes
from protocols.vertical_lr.scoring import center_score_step
from protocols.vertical_lr.steps import VerticalParty
from protocols.woe.secure_binning import (
    encrypted_bin_counts_to_bytes,
    encrypted_labels_from_bytes,
    sum_labels_per_bin,
)


def psi_reply(ids: Sequence[psi.Identifier],
              received: bytes) -> tuple[psi.PsiResponderState, bytes]:
    """PSI stage 2: the bank's set double-blinded and the center's own set blinded (state
    kept for stage 4)."""
    state, out = psi.responder_reply(ids, psi.psi_message_from_bytes(received), workers=1)
    return state, psi.psi_message_to_bytes(out)


def psi_finish(state: psi.PsiResponderState, received: bytes) -> psi.PsiResult:
    """PSI stage 4: the intersection, from the bank's double-blinding of the center's set."""
    return psi.responder_finish(state, psi.psi_message_from_bytes(received))


def label_sums_per_bin(aligned: AlignedParty, party: VerticalParty, received: bytes, *,
                       n_bins: int, method: str, short_exponent: bool) -> bytes:
    """Binning stage 2: per bin of each own training column, the sum of the bank's encrypted
    labels (re-randomised) and the bin size, both under the bank's key."""
    run_id, bank_key = party.config.run_id, party.peer_public_key
    labels = encrypted_labels_from_bytes(received, public_key=bank_key, run_id=run_id,
                                         n_rows=party.config.n_rows)
    bins = bin_table(aligned.train_table, n_bins=n_bins, method=method)
    counts = sum_labels_per_bin(labels, bins, bank_public_key=bank_key, run_id=run_id,
                                short_exponent=short_exponent)
    return encrypted_bin_counts_to_bytes(counts)


def encrypted_scores(aligned: AlignedParty, party: VerticalParty, weights: np.ndarray) -> bytes:
    """Scoring, center side: the partial scores of the held-out rows, encrypted under the
    bank's key."""
    out = center_score_step(aligned.x_test, weights, bank_public_key=party.peer_public_key,
                            run_id=party.config.run_id)
    return vertical_ciphertexts_to_bytes(out)
