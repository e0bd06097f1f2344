"""Coordinator side of the calibration step: the map every bank fitted on the same opened sums.

After the last round each bank opens the combined sealed histograms, which then also hold the
summed per-class histograms of the banks' training-row scores, and fits the same Platt map on
them (:mod:`federation.ml.calibration`). The coordinator only takes the map's two parameters
from the finalize replies and checks that every bank reports the same ones (as it does for the
AUC/KS); it measures the map on the summed held-out histograms the banks release
(:func:`server.results.calibration_section`).

Security assumption: honest-but-curious coordinator; it learns two numbers per run describing
the pooled training-score distribution, never a row, a label or one bank's counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from federation.ml.calibration import PlattMap
from federation.wire.records import (
    METRIC_CAL_INTERCEPT,
    METRIC_CAL_ROWS,
    METRIC_CAL_SLOPE,
    metrics_of,
)
from server.errors import FederationError

FITTED_ON_TRAINING: Final = "training rows (summed histograms)"
MAP_TOLERANCE: Final = 1e-9


def agreed_calibration(replies: Sequence[Any]) -> tuple[PlattMap, str, int] | None:
    """The calibration map (with what it was fitted on and how many rows) that every
    replying bank reported; None when no bank reported one.

    Raises
    ------
    FederationError
        Two banks report different maps from the same combined histograms, or only some
        banks report one (a bank or the channel is faulty).
    """
    values = [metrics_of(r.content) for r in replies]
    fitted = [v for v in values if METRIC_CAL_SLOPE in v]
    if not fitted:
        return None
    maps = [(float(v[METRIC_CAL_SLOPE]), float(v[METRIC_CAL_INTERCEPT]), int(v[METRIC_CAL_ROWS]))
            for v in fitted]
    first = maps[0]
    if len(fitted) != len(values) or any(
            abs(m[0] - first[0]) > MAP_TOLERANCE or abs(m[1] - first[1]) > MAP_TOLERANCE
            or m[2] != first[2] for m in maps):
        raise FederationError("banks fitted different calibration maps from the same combined "
                              "histograms; a bank or the channel is faulty.")
    return PlattMap(slope=first[0], intercept=first[1]), FITTED_ON_TRAINING, first[2]
