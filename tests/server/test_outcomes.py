"""What the coordinator reads off admitted replies: the AUC/KS every bank computed from the
same combined histograms must agree (a bank that opened something else stops the run), and
each admitted sealed vector is hashed by bank for the audit log."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from federation.steps.secure_sum import KIND_WEIGHTS, PlainSum
from federation.wire.records import KEY_SEALED_EVAL, METRIC_AUC, METRIC_KS, reply_content
from server.audit import sha256_hex
from server.errors import FederationError
from server.exchange import StepOutcome
from server.outcomes import METRIC_TOLERANCE, agreed_metrics, received_hashes


def _reply(bank: int, metrics: dict[str, float] | None = None, value: float = 1.0):
    sealed = PlainSum().seal(np.full(3, value), kind=KIND_WEIGHTS, run_id="run", round=1)
    return SimpleNamespace(content=reply_content(bank=bank, n_examples=10, sealed=sealed,
                                                 metrics=metrics), sealed=sealed)


def test_the_banks_agree_on_the_metrics_or_the_run_stops() -> None:
    same = {METRIC_AUC: 0.71, METRIC_KS: 0.32}
    outcome = StepOutcome([_reply(0, same), _reply(1, same), _reply(2)])  # type: ignore[list-item]
    assert agreed_metrics(outcome) == (0.71, 0.32)
    assert agreed_metrics(StepOutcome([_reply(0)])) is None  # type: ignore[list-item]
    near = {METRIC_AUC: 0.71 + METRIC_TOLERANCE / 2, METRIC_KS: 0.32}
    assert agreed_metrics(StepOutcome([_reply(0, same), _reply(1, near)])) is not None  # type: ignore[list-item]
    for other in ({METRIC_AUC: 0.72, METRIC_KS: 0.32}, {METRIC_AUC: 0.71, METRIC_KS: 0.3}):
        with pytest.raises(FederationError, match="different evaluation results"):
            agreed_metrics(StepOutcome([_reply(0, same), _reply(1, other)]))  # type: ignore[list-item]


def test_each_admitted_vector_is_hashed_by_bank() -> None:
    replies = [_reply(3, value=1.0), _reply(5, value=2.0)]
    hashes = received_hashes(StepOutcome(replies))  # type: ignore[arg-type]
    assert hashes == {"3": sha256_hex(replies[0].sealed.payload),
                      "5": sha256_hex(replies[1].sealed.payload)}
    assert hashes["3"] != hashes["5"]
    assert received_hashes(StepOutcome(replies), KEY_SEALED_EVAL) == {}  # type: ignore[arg-type]
