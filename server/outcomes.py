"""What the coordinator reads off a step's admitted replies, for the horizontal and the
boosted-tree workflows alike: the AUC/KS every bank computed from the same combined
histograms (which must agree), and the hash of each admitted sealed vector (for the audit
log). Imports the wire records, the exchange's outcome type and the audit's hash only.

Security: both read what the banks reported after the exchange admitted their replies
(signed, fresh, from the run's banks); a bank that opens other metrics than the rest stops the
run, since every bank opened the same sums.
"""

from __future__ import annotations

from federation.wire.records import KEY_SEALED, METRIC_AUC, METRIC_KS, bank_of, metrics_of, sealed_of
from server.audit import sha256_hex
from server.errors import FederationError
from server.exchange import StepOutcome

METRIC_TOLERANCE = 1e-9
"""How far two banks' AUC or KS of the same combined histograms may differ (float noise)."""


def agreed_metrics(outcome: StepOutcome) -> tuple[float, float] | None:
    """The AUC/KS every bank computed from the same combined histograms (None when no reply
    reports one).

    Raises
    ------
    FederationError
        Two banks report AUCs or KSs further apart than :data:`METRIC_TOLERANCE`.
    """
    values = [metrics_of(r.content) for r in outcome.replies]
    values = [v for v in values if METRIC_AUC in v]
    if not values:
        return None
    aucs = [float(v[METRIC_AUC]) for v in values]
    kss = [float(v[METRIC_KS]) for v in values]
    if max(aucs) - min(aucs) > METRIC_TOLERANCE or max(kss) - min(kss) > METRIC_TOLERANCE:
        raise FederationError("banks opened different evaluation results from the same "
                              "combined histograms; a bank or the channel is faulty.")
    return aucs[0], kss[0]


def received_hashes(outcome: StepOutcome, key: str = KEY_SEALED) -> dict[str, str]:
    """SHA-256 of every admitted sealed vector (under record key ``key``), by bank."""
    out = {}
    for reply in outcome.replies:
        sealed = sealed_of(reply.content, key)
        if sealed is not None:
            out[str(bank_of(reply.content))] = sha256_hex(sealed.payload)
    return out
