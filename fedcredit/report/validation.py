"""Report sections a model validation team reads: grades, cut-offs, gains and calibration.

All of them come from the federated model's summed test-score histograms
(``results.score_histograms``) and, where the run calibrated its PDs, from
``results.calibration`` (PD bands of the held-out rows after calibration); the numbers are
computed in :mod:`fedcredit.report.statistics` and tagged for the tests
(:mod:`fedcredit.report.page`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from fedcredit.report.page import derived, note, num, pct, table
from fedcredit.report.statistics import (
    CalibrationBand,
    approval_table,
    calibration_in_the_large,
    cumulative_grades,
    cutoff_table,
    gains_table,
    grade_inversions,
    grades_monotone,
    histogram_calibration,
    hosmer_lemeshow,
)
from federation.ml.calibration import PLATT, PlattMap, bin_centres
from federation.run.results import Calibration, RunResults, ScoreHistograms
from federation.scorecard.scale import GradeSummary, RiskGrades, ScorecardScale

NOT_CALIBRATED = "Not calibrated (run predates calibration)"


@dataclass(frozen=True, slots=True)
class ScoreView:
    """The federated model's test-score histograms with the scale and grades of the report.

    ``pd_map`` is the run's calibration map (None for runs that predate calibration): the
    histograms count the model's raw logits, and a bin's PD, points and grade are those of
    its centre after the map, as ``fedcredit score`` grades a row.
    """

    hist: ScoreHistograms
    scale: ScorecardScale
    grades: RiskGrades
    pd_map: PlattMap | None = None
    fitted_on: str = ""

    @property
    def bad(self) -> np.ndarray:
        """Bads per logit bin (riskiest last)."""
        return np.asarray(self.hist.bad, dtype=np.float64)

    @property
    def good(self) -> np.ndarray:
        """Goods per logit bin (riskiest last)."""
        return np.asarray(self.hist.good, dtype=np.float64)

    @property
    def logit_range(self) -> float:
        """Half-width of the logit range the bins cover."""
        return float(self.hist.range[1])

    @property
    def log_odds(self) -> np.ndarray:
        """Log-odds of default of each bin centre (calibrated where the run has a map)."""
        centres = bin_centres(self.hist.bins, logit_range=self.logit_range)
        return centres if self.pd_map is None else self.pd_map.log_odds(centres)

    @property
    def scores(self) -> np.ndarray:
        """Points of each bin (falling as the bins' risk rises)."""
        return self.scale.points_from_log_odds(self.log_odds)


def calibration_of(r: RunResults) -> Calibration | None:
    """``results.calibration`` (None for runs that predate calibration)."""
    return r.calibration


def calibration_map(r: RunResults) -> PlattMap | None:
    """The run's Platt map (None without calibration or for another method)."""
    cal = r.calibration
    if cal is None or cal.method != PLATT:
        return None
    return PlattMap.from_dict(cal.map)


def _band(lo: float, hi: float) -> str:
    return (f">= {lo:g}" if math.isinf(hi) else f"< {hi:g}" if math.isinf(lo)
            else f"{lo:g} to < {hi:g}")


def _pd_band(scale: ScorecardScale, lo: float, hi: float) -> str:
    """PD range of a score band (more points, lower PD)."""
    top = 1.0 if math.isinf(lo) else float(scale.probability(lo))
    bottom = 0.0 if math.isinf(hi) else float(scale.probability(hi))
    return f"{bottom:.1%} to {top:.1%}"


def grade_section(view: ScoreView, rows: Sequence[GradeSummary]) -> str:
    """Rows, bads, default rate and cumulative bad rate per grade; whether rates are monotone."""
    cumulative = cumulative_grades(rows)
    body = [[escape(g.grade), escape(_band(g.min_score, g.max_score)),
             escape(_pd_band(view.scale, g.min_score, g.max_score)),
             derived(f"{g.count:,}", "grade-count"), derived(f"{g.share:.1%}", "grade-share"),
             derived(f"{g.bads or 0:,}", "grade-bads"),
             derived(pct(g.default_rate), "grade-default-rate"),
             derived(f"{c.rows:,}", "grade-cum-rows"),
             derived(pct(c.bad_rate), "grade-cum-bad-rate")]
            for g, c in zip(rows, cumulative, strict=True)]
    populated = sum(1 for g in rows if g.count)
    monotone = grades_monotone(rows)
    verdict = (f"{derived(str(populated), 'grades-populated')} of {len(rows)} grades hold test "
               f"rows; default rate rising from best to worst grade: "
               f"{derived('yes' if monotone else 'no', 'grades-monotone')}"
               f"{escape(_inversion(rows))}.")
    return ('<h2 id="grades">Risk grades</h2>'
            + table(["grade", "score", "PD range", "test rows", "share", "bads",
                     "default rate", "cumulative rows", "cumulative bad rate"], body, "grades")
            + f"<p>{verdict}</p>"
            + note(f"Scale: {view.scale.base_score:g} points at {view.scale.base_odds:g}:1 "
                   f"good:bad odds, {view.scale.pdo:g} points to double the odds, applied to "
                   + (f"the calibrated PDs (the run's calibration map, fitted on "
                      f"{view.fitted_on}, as `fedcredit score` grades a row)"
                      if view.pd_map is not None else
                      "the model's raw PDs (the run predates calibration)" if not view.fitted_on
                      else "the model's raw PDs (the report applies Platt maps only; see "
                      "Calibration for this run's map)")
                   + ". Grades from the summed test-score histograms (each bin graded at its "
                   "centre). Cumulative: this grade and every better one, i.e. approving down "
                   "to this grade."))


def _inversion(rows: Sequence[GradeSummary]) -> str:
    """The grade pairs whose default rates fall from the worse to the better one, each with
    whether the fall is beyond sampling error (:func:`grade_inversions`)."""
    found = grade_inversions(rows)
    if not found:
        return ""
    said = [f"{i.better.grade}: {i.better.default_rate:.1%} of {i.better.count:,} rows, above "
            f"{i.worse.grade}: {i.worse.default_rate:.1%} of {i.worse.count:,}, z = {i.z:.2f}, "
            + ("beyond sampling error" if i.significant else
               "within sampling error: the two grades are not separated in risk")
            for i in found]
    return " (" + "; ".join(said) + ")"


def _cutoff_rows(rows: Sequence[Any], scale: ScorecardScale, kind: str) -> list[list[str]]:
    return [[derived(f"{r.cutoff:.1f}", f"{kind}-cutoff"),
             derived(f"{float(scale.probability(r.cutoff)):.2%}", f"{kind}-pd"),
             derived(f"{r.approved:,}", f"{kind}-approved"),
             derived(pct(r.approval_rate), f"{kind}-approval-rate"),
             derived(pct(r.approved_bad_rate, 2), f"{kind}-bad-rate"),
             derived(pct(r.bads_declined), f"{kind}-bads-declined")] for r in rows]


def cutoff_section(view: ScoreView) -> str:
    """Approval rate and bad rate of the approved at each grade cut-off and approval target."""
    header = ["approve scores >=", "PD at the cut-off", "approved rows", "approval rate",
              "bad rate of the approved", "bads declined"]
    at_grades = cutoff_table(view.bad, view.good, view.scores, view.grades.cutoffs)
    at_targets = approval_table(view.bad, view.good, view.scores)
    return ('<h2 id="cutoffs">Cut-offs</h2><h3>At the grade cut-offs</h3>'
            + table(header, _cutoff_rows(at_grades, view.scale, "cut"), "cutoffs")
            + "<h3>At target approval rates</h3>"
            + table(header, _cutoff_rows(at_targets, view.scale, "approve"), "approvals")
            + note("Every test row scoring at least the cut-off is approved. Bins are never "
                   "split, so an approval rate can pass its target; 'bads declined' is the "
                   "share of all bad test rows below the cut-off."))


def gains_section(view: ScoreView) -> str:
    """Gains and lift in ten groups of about equal size, riskiest first."""
    rows = [[derived(str(g.group), "gain-group"), derived(f"{g.rows:,}", "gain-rows"),
             derived(f"{g.bads:,}", "gain-bads"), derived(pct(g.bad_rate), "gain-bad-rate"),
             derived(pct(g.cumulative_rows_share), "gain-cum-rows"),
             derived(pct(g.cumulative_bads_share), "gain-cum-bads"),
             derived(f"{g.lift:.2f}", "gain-lift")] for g in gains_table(view.bad, view.good)]
    return ('<h2 id="gains">Gains and lift</h2>'
            + table(["group (riskiest first)", "rows", "bads", "bad rate", "cumulative rows",
                     "cumulative bads caught", "lift"], rows, "gains")
            + note("Groups of about a tenth of the test rows each (score bins are not split). "
                   "Lift: the group's bad rate over the overall bad rate."))


def _band_rows(bands: Sequence[CalibrationBand], prefix: tuple[str | int, ...] | None,
               r: RunResults) -> list[list[str]]:
    out = []
    for i, b in enumerate(bands):
        if prefix is None:
            out.append([derived(f"{b.lo:.2%} to {b.hi:.2%}", "hcal-band"),
                        derived(f"{b.rows:,}", "hcal-rows"),
                        derived(f"{b.defaults:,}", "hcal-defaults"),
                        derived(f"{b.mean_pd:.2%}", "hcal-mean-pd"),
                        derived(f"{b.observed_rate:.2%}", "hcal-observed")])
        else:
            at = (*prefix, i)
            out.append([num(r, *at, "lo", spec=".2%") + " to " + num(r, *at, "hi", spec=".2%"),
                        num(r, *at, "rows", spec=","), num(r, *at, "defaults", spec=","),
                        num(r, *at, "mean_pd", spec=".2%"),
                        num(r, *at, "observed_rate", spec=".2%")])
    return out


def calibration_bands(r: RunResults, view: ScoreView | None) -> list[CalibrationBand]:
    """The PD bands the calibration figure draws: the run's calibration bins, else the raw
    model's bands from the histograms (empty when neither is available)."""
    cal = calibration_of(r)
    if cal is not None:
        return list(cal.bins)
    if view is None:
        return []
    return histogram_calibration(view.bad, view.good, logit_range=view.logit_range)[0]


def _hl_text(bands: Sequence[CalibrationBand]) -> str:
    hl = hosmer_lemeshow([b.rows for b in bands], [b.defaults for b in bands],
                         [b.mean_pd for b in bands])
    if hl is None:
        return "Hosmer-Lemeshow: fewer than 3 PD bands, not computed."
    return (f"Hosmer-Lemeshow over the {len(bands)} bands: statistic "
            f"{hl.statistic:.2f}, {hl.dof} degrees of freedom, p = {hl.p_value:.3f} (small p: "
            "predicted and observed default rates differ beyond chance).")


def _large_text(bands: Sequence[CalibrationBand]) -> str:
    large = calibration_in_the_large([b.rows for b in bands], [b.defaults for b in bands],
                                     [b.mean_pd for b in bands])
    if large is None:
        return ""
    verdict = ("within sampling error" if large.within_sampling_error else
               "beyond sampling error: the PDs are biased on these rows")
    return (f"Calibration in the large: mean PD minus observed default rate "
            f"{large.gap * 100:+.2f} points, standard error {large.se * 100:.2f} points if the "
            f"PDs were right (z = {large.z:+.2f}: {verdict}). A 1-point tolerance can be checked "
            f"(two standard errors) on about {large.rows_for(0.01):,} held-out rows of this mix; "
            f"these are {large.rows:,}.")


def calibration_section(r: RunResults, view: ScoreView | None) -> str:
    """Predicted vs observed default rate per PD band, mean PD, Brier score, Hosmer-Lemeshow."""
    cal = calibration_of(r)
    header = ["PD band", "rows", "defaults", "mean PD", "observed default rate"]
    if cal is not None:
        facts = [["method", num(r, "calibration", "method")],
                 ["fitted on", num(r, "calibration", "fitted_on")],
                 ["rows fitted on", num(r, "calibration", "fit_rows", spec=",")],
                 ["held-out rows", num(r, "calibration", "rows", spec=",")],
                 ["mean PD (calibrated)", num(r, "calibration", "mean_pd", spec=".2%")],
                 ["observed default rate", num(r, "calibration", "observed_rate", spec=".2%")],
                 ["mean PD before calibration",
                  num(r, "calibration", "uncalibrated_mean_pd", spec=".2%")],
                 ["Brier score", num(r, "calibration", "brier", spec=".4f")]]
        bands = calibration_bands(r, view)
        return ('<h2 id="calibration">Calibration</h2>' + table(["calibration", "value"], facts,
                                                               "calibration-facts")
                + table(header, _band_rows(bands, ("calibration", "bins"), r), "calibration")
                + f"<p>{escape(_hl_text(bands))}</p>"
                + f'<p id="calibration-in-the-large">{escape(_large_text(bands))}</p>'
                + note("Every number is on the held-out (test) rows after calibration; the "
                       "bands are PD ranges of the calibrated model (empty bands left out)."))
    head = (f'<h2 id="calibration">Calibration</h2><p class="warning" id="not-calibrated">'
            f"{NOT_CALIBRATED}: results.json holds no calibration, so the PDs below are the "
            "model's raw outputs and need not be default probabilities.</p>")
    if view is None:
        return head
    bands, brier = histogram_calibration(view.bad, view.good, logit_range=view.logit_range)
    return (head + table(header, _band_rows(bands, None, r), "calibration")
            + f"<p>Brier score of the raw PDs: {derived(f'{brier:.4f}', 'hcal-brier')}. "
            f"{escape(_hl_text(bands))}</p>"
            + note("Bands of about a tenth of the test rows from the summed test-score "
                   "histograms (each bin at its centre's PD)."))
