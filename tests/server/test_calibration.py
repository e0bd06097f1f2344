"""Coordinator side of the calibration step: the banks' map must agree, the vertical half is
fitted and measured on the rest, and the section follows results.json's schema."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from federation.ml.calibration import PlattMap, calibration_counts, fit_platt
from federation.ml.metrics import score_histograms
from federation.run.results import Calibration, HorizontalResults, VerticalResults
from federation.wire.records import (
    METRIC_CAL_INTERCEPT,
    METRIC_CAL_ROWS,
    METRIC_CAL_SLOPE,
    reply_content,
)
from server.calibration import (
    FITTED_ON_HALF,
    FITTED_ON_TRAINING,
    agreed_calibration,
    calibration_section,
    held_out_calibration,
)
from server.errors import FederationError


def replies(*maps: tuple[float, float, int] | None) -> list[SimpleNamespace]:
    out = []
    for bank, m in enumerate(maps):
        metrics = {} if m is None else {METRIC_CAL_SLOPE: m[0], METRIC_CAL_INTERCEPT: m[1],
                                        METRIC_CAL_ROWS: m[2]}
        out.append(SimpleNamespace(content=reply_content(bank=bank, n_examples=10,
                                                         metrics=metrics)))
    return out


def scored(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.3, 1.2, rows)
    return rng.random(rows) < 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(-0.3 * z))


def test_the_map_every_bank_reports_is_taken() -> None:
    fitted = agreed_calibration(replies((3.0, -0.2, 900), (3.0, -0.2, 900)))
    assert fitted == (PlattMap(slope=3.0, intercept=-0.2), FITTED_ON_TRAINING, 900)
    assert agreed_calibration(replies(None, None)) is None


@pytest.mark.parametrize("maps", [((3.0, -0.2, 900), (3.0, -0.21, 900)),
                                  ((3.0, -0.2, 900), (3.0, -0.2, 901)),
                                  ((3.0, -0.2, 900), None)])
def test_banks_that_disagree_stop_the_run(maps: tuple) -> None:
    with pytest.raises(FederationError, match="different calibration maps"):
        agreed_calibration(replies(*maps))


def test_section_measures_the_map_on_held_out_counts_and_round_trips() -> None:
    y, p = scored(60_000, seed=1)  # random halves of 30,000: their rates differ by ~0.004
    pd_map = fit_platt(*score_histograms(y[:30_000], p[:30_000]))
    section = calibration_section((pd_map, FITTED_ON_TRAINING, 30_000),
                                  score_histograms(y[30_000:], p[30_000:]))
    assert isinstance(section, Calibration)
    assert section.method == "platt" and section.fit_rows == section.rows == 30_000
    assert section.map == {"slope": pd_map.slope, "intercept": pd_map.intercept}
    assert abs(section.mean_pd - section.observed_rate) < 0.01
    assert section.uncalibrated_mean_pd > section.observed_rate + 0.03
    assert [b.lo for b in section.bins] == sorted(b.lo for b in section.bins)
    doc = HorizontalResults(calibration=section)
    assert HorizontalResults.from_dict(eval_json(doc.to_json())) == doc
    assert calibration_section(None, score_histograms(y, p)) is None
    assert calibration_section((pd_map, FITTED_ON_TRAINING, 1), None) is None


def eval_json(text: str) -> object:
    import json

    doc = json.loads(text)
    keys = set(doc["calibration"])
    assert {"method", "fitted_on", "rows", "mean_pd", "observed_rate", "brier",
            "uncalibrated_mean_pd", "map", "bins"} <= keys
    assert set(doc["calibration"]["bins"][0]) == {"lo", "hi", "rows", "defaults", "mean_pd",
                                                  "observed_rate"}
    return doc


def test_vertical_half_is_fitted_and_the_other_half_measured() -> None:
    y, p = scored(6_000, seed=2)
    held = tuple(h.tolist() for h in score_histograms(y, p))
    section = held_out_calibration(held, calibration_counts(y, p))
    assert section is not None and section.fitted_on == FITTED_ON_HALF
    assert section.rows + (section.fit_rows or 0) == 6000
    assert abs(section.mean_pd - section.observed_rate) < 0.01
    assert held_out_calibration(held, None) is None  # an older bank sends no half
    with pytest.raises(FederationError, match="inconsistent"):
        held_out_calibration(calibration_counts(y, p), held)


def test_older_results_without_calibration_still_read() -> None:
    doc = HorizontalResults(dataset="uci")
    assert doc.calibration is None
    assert "calibration" not in doc.to_json()
    assert "calibration" in VerticalResults.__dataclass_fields__
