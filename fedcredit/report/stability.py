"""The report's stability section: PSI between the training and the test score distributions.

A horizontal LR/MLP run of two or more banks releases, beside the summed test-score
histograms, the summed training-score counts in the same logit bins
(``results.training_scores``; the banks already sum them in the last round to fit the
calibration map). The section compares the two:

* overall PSI over ten groups of equal training mass (the histogram analogue of binning at
  the training deciles, :func:`federation.ml.credit_metrics.psi_against_reference`);
* per risk grade: each grade's share of training and test rows and its PSI term
  ``(test - train) * ln(test / train)``; the terms add up to the PSI over grades.

Rule of thumb: PSI < 0.10 stable, 0.10-0.25 some shift, > 0.25 significant shift.

Security: both distributions are sums over the banks released by the banks themselves; the
report reads them from results.json and touches no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np

from fedcredit.report.page import derived, note, pct, table
from federation.ml.credit_metrics import (
    PSI_FLOOR,
    PSI_SHIFTED,
    PSI_STABLE,
    psi_against_reference,
    psi_from_counts,
)
from federation.run.results import RunResults, ScoreCounts, VerticalResults
from federation.scorecard.scale import RiskGrades

PSI_GROUPS = 10


@dataclass(frozen=True, slots=True)
class GradeShift:
    """One grade's share of the training and of the test rows, and its PSI term."""

    grade: str
    train_share: float
    test_share: float
    term: float


def psi_verdict(psi: float) -> str:
    """The rule-of-thumb reading of a PSI value."""
    return ("stable" if psi < PSI_STABLE else "some shift" if psi < PSI_SHIFTED
            else "significant shift")


def grade_shifts(grades: RiskGrades, scores: np.ndarray, train: np.ndarray,
                 test: np.ndarray, *, floor: float = PSI_FLOOR) -> list[GradeShift]:
    """Per grade: shares of the training and test rows (each bin graded at its ``scores``)
    and the PSI term; the terms sum to :func:`psi_from_counts` over the grades."""
    idx = grades.index(np.asarray(scores))
    k = len(grades.labels)
    tr = np.bincount(idx, weights=np.asarray(train, dtype=np.float64), minlength=k)
    te = np.bincount(idx, weights=np.asarray(test, dtype=np.float64), minlength=k)
    e = np.maximum(tr / tr.sum(), floor)
    a = np.maximum(te / te.sum(), floor)
    return [GradeShift(label, float(tr[i] / tr.sum()), float(te[i] / te.sum()),
                       float((a[i] - e[i]) * np.log(a[i] / e[i])))
            for i, label in enumerate(grades.labels)]


def _usable(train: ScoreCounts | None, test_rows: np.ndarray) -> bool:
    return (train is not None and len(train.rows) == test_rows.size
            and sum(train.rows) > 0 and test_rows.sum() > 0)


def stability_section(r: RunResults, test: np.ndarray | None, scores: np.ndarray | None,
                      grades: RiskGrades) -> str:
    """PSI train vs test overall and per grade, where results.json holds both distributions.

    ``test``: the summed test-score counts per logit bin (both classes); ``scores``: the points
    of each bin as the report grades it (calibrated where the run has a map)."""
    train = None if isinstance(r, VerticalResults) else r.training_scores
    head = '<h2 id="stability">Stability</h2>'
    if test is None or scores is None or train is None or not _usable(train, test):
        why = ("a vertical run holds its training scores at the bank" if isinstance(
            r, VerticalResults) else "results.json holds no training-score counts (a run of "
               "one bank, boosted trees, or a run written before they were released)")
        return head + note(f"PSI between training and test scores: not available; {why}."
                           + ("" if isinstance(r, VerticalResults) else
                              " To check a new population, `fedcredit score --model RUN_DIR "
                              "--data FILE` prints the PSI of its scores against these test "
                              "scores."))
    train_rows = np.asarray(train.rows, dtype=np.float64)
    psi = psi_against_reference(train_rows, test, n_bins=PSI_GROUPS)
    shifts = grade_shifts(grades, scores, train_rows, test)
    by_grade = psi_from_counts(*(np.array([getattr(s, f) for s in shifts])
                                 for f in ("train_share", "test_share")))
    rows = [[escape(s.grade), derived(pct(s.train_share), "psi-train-share"),
             derived(pct(s.test_share), "psi-test-share"), derived(f"{s.term:.4f}", "psi-term")]
            for s in shifts]
    rows.append(["all grades", derived(f"{int(train_rows.sum()):,}", "psi-train-rows") + " rows",
                 derived(f"{int(test.sum()):,}", "psi-test-rows") + " rows",
                 derived(f"{by_grade:.4f}", "psi-grades")])
    return (head + f"<p>PSI of the test scores against the training scores: "
            f"{derived(f'{psi:.4f}', 'psi')} ({escape(psi_verdict(psi))}; {PSI_GROUPS} groups of "
            "equal training mass).</p>"
            + table(["grade", "training rows", "test rows", "PSI term"], rows, "stability")
            + note("Both distributions are sums over the banks (the training rows' scores "
                   "under the final model, released by the banks with the test histograms). "
                   f"PSI < {PSI_STABLE:g}: stable; {PSI_STABLE:g}-{PSI_SHIFTED:g}: some shift; "
                   f"> {PSI_SHIFTED:g}: significant shift. The grade terms add up to the PSI "
                   "over grades in the last row."))
