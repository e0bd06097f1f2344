"""Coordinator side of the calibration step (:mod:`federation.ml.calibration`).

Horizontal runs: the map every bank fitted on the same opened sums. After the last round
each bank opens the combined sealed histograms, which then also hold the summed per-class
histograms of the banks' training-row scores, and fits the same Platt map on them. The
coordinator only takes the map's two parameters from the finalize replies and checks that
every bank reports the same ones (as it does for the AUC/KS); it measures the map on the summed
held-out histograms the banks release (:func:`calibration_section`).

Vertical runs: the bank, which holds the labels, reports the per-class counts of all held-out
rows and of their calibration half (:func:`federation.ml.calibration.calibration_rows`); the
coordinator fits the map on that half and measures it on the other
(:func:`held_out_calibration`).

Security assumption: honest-but-curious coordinator; it learns two numbers per run describing
the pooled training-score distribution (horizontal) or the counts of one half of the held-out
rows besides those of all of them (vertical), never a row, a label or one bank's counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from federation.ml.calibration import (
    PLATT,
    CalibrationError,
    PlattMap,
    check_calibration,
    fit_and_hold_out,
)
from federation.ml.metrics import LOGIT_RANGE
from federation.run.results import Calibration, CalibrationBin
from federation.wire.records import (
    METRIC_CAL_INTERCEPT,
    METRIC_CAL_ROWS,
    METRIC_CAL_SLOPE,
    metrics_of,
)
from server.errors import FederationError

FITTED_ON_TRAINING: Final = "training rows (summed histograms)"
FITTED_ON_VALIDATION: Final = "validation rows (summed histograms)"
"""Boosted trees with early stopping: the validation rows the banks hold out."""
FITTED_ON_HALF: Final = "held-out rows, calibration half (every other row)"
MAP_TOLERANCE: Final = 1e-9


def agreed_calibration(replies: Sequence[Any], *, fitted_on: str = FITTED_ON_TRAINING,
                       ) -> tuple[PlattMap, str, int] | None:
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
    return PlattMap(slope=first[0], intercept=first[1]), fitted_on, first[2]


def held_out_calibration(held_out: tuple[list[int], list[int]],
                         fit: tuple[list[int], list[int]] | None) -> Calibration | None:
    """Vertical runs: the map fitted on the calibration half's counts ``fit``, measured on the
    rest of the ``held_out`` counts; None when the bank sent no half (an older node) or the
    half has too few rows of a class."""
    if fit is None:
        return None
    try:
        pd_map, rest = fit_and_hold_out(np.asarray(held_out[0]), np.asarray(held_out[1]),
                                        np.asarray(fit[0]), np.asarray(fit[1]))
    except CalibrationError:
        return None
    except ValueError as exc:
        raise FederationError(f"the bank's calibration counts are inconsistent ({exc}); the "
                              "bank or the channel is faulty.") from exc
    return calibration_section((pd_map, FITTED_ON_HALF, int(sum(fit[0]) + sum(fit[1]))), rest)


def calibration_section(fitted: tuple[PlattMap, str, int] | None,
                        held_out: tuple[Any, Any] | None) -> Calibration | None:
    """The ``calibration`` section: the fitted map (with the rows it was fitted on and their
    count) measured on the held-out (bad, good) logit-bin counts; None without either, or
    when the held-out counts hold no row."""
    if fitted is None or held_out is None:
        return None
    pd_map, fitted_on, fit_rows = fitted
    try:
        check = check_calibration(pd_map, *held_out, logit_range=LOGIT_RANGE)
    except CalibrationError:
        return None
    return Calibration(
        method=PLATT, fitted_on=fitted_on, fit_rows=fit_rows, rows=check.rows,
        mean_pd=check.mean_pd, observed_rate=check.observed_rate, brier=check.brier,
        uncalibrated_mean_pd=check.uncalibrated_mean_pd, map=pd_map.as_dict(),
        bins=tuple(CalibrationBin(lo=b.lo, hi=b.hi, rows=b.rows, defaults=b.defaults,
                                  mean_pd=b.mean_pd, observed_rate=b.observed_rate)
                   for b in check.bands))
