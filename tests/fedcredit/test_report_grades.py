"""The risk-grade verdict (issue 13): an inversion of adjacent grades' default rates is named
with its two-proportion z, and called within sampling error when it is (UCI LR's B 13.8 % vs
C 13.7 % on thousands of rows) rather than a reversed order."""

from __future__ import annotations

import math

import pytest

from fedcredit.report.statistics import INVERSION_Z, grade_inversions, grades_monotone
from fedcredit.report.validation import _inversion
from federation.scorecard.scale import GradeSummary


def grade(name: str, rows: int, bads: int) -> GradeSummary:
    return GradeSummary(name, 0.0, 1.0, rows, bads, 0.2, bads / rows if rows else math.nan)


def test_a_tiny_inversion_on_many_rows_is_within_sampling_error() -> None:
    rows = [grade("A", 1117, 80), grade("B", 1741, 240), grade("C", 3426, 469),
            grade("D", 1438, 374), grade("E", 0, 0)]
    assert not grades_monotone(rows)
    (found,) = grade_inversions(rows)
    assert (found.better.grade, found.worse.grade) == ("B", "C")
    pooled = (240 + 469) / (1741 + 3426)
    se = math.sqrt(pooled * (1 - pooled) * (1 / 1741 + 1 / 3426))
    assert found.z == pytest.approx((240 / 1741 - 469 / 3426) / se)
    assert 0 < found.z < INVERSION_Z and not found.significant
    text = _inversion(rows)
    assert "B: 13.8% of 1,741 rows, above C: 13.7% of 3,426" in text
    assert "within sampling error" in text and "beyond" not in text


def test_a_clear_inversion_is_beyond_sampling_error_and_monotone_grades_have_none() -> None:
    rows = [grade("A", 1000, 300), grade("B", 1000, 100), grade("C", 500, 250)]
    (found,) = grade_inversions(rows)
    assert found.significant and found.z > 9
    assert "beyond sampling error" in _inversion(rows)
    ordered = [grade("A", 1000, 50), grade("B", 10, 1), grade("C", 500, 250)]
    assert grade_inversions(ordered) == [] and _inversion(ordered) == ""
