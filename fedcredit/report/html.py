"""``fedcredit report``: one self-contained HTML validation report from a run folder.

Works for every kind of run (``fedcredit simulate`` incl. boosted trees, ``fedcredit vertical``
incl. SecureBoost, deployed runs) from the typed ``results.json``
(:mod:`federation.run.results`): what the coordinator legitimately holds, i.e. metrics and the
banks' summed per-class test-score histograms, never a row. The sections, in order: summary
(AUC/KS with 95% intervals, every baseline under the CLI's name), figures, risk grades,
cut-offs, gains and lift, calibration, stability (PSI train vs test), differential privacy, the
model, rounds, banks, information value, run identity and settings. Numbers are tagged for
checking (:mod:`fedcredit.report.page`); figures are PNGs embedded as data URIs, so the page
loads nothing from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fedcredit.report import figures as figs
from fedcredit.report import names
from fedcredit.report.context import RunContext, run_context
from fedcredit.report.model_section import iv_section, model_section, trees_section
from fedcredit.report.page import figure_html, note, page, value_at
from fedcredit.report.privacy_section import privacy_section
from fedcredit.report.stability import stability_section
from fedcredit.report.statistics import cap_curve, grade_table_from_scores
from fedcredit.report.summary import (
    banks_section,
    history_section,
    identity_section,
    many_banks,
    settings_section,
    summary_section,
)
from fedcredit.report.validation import (
    ScoreView,
    calibration_bands,
    calibration_map,
    calibration_of,
    calibration_section,
    cutoff_section,
    gains_section,
    grade_section,
)
from federation.run.folder import RunFolder, atomic_write_text
from federation.run.results import HorizontalResults, RunResults, VerticalResults, read_results
from federation.scorecard.scale import GradeSummary, RiskGrades, ScorecardScale

__all__ = ["build_report", "load_results", "value_at", "write_report"]

FigureSpec = tuple[str, str, str, Callable[[], bytes]]


def load_results(run_dir: str | Path) -> RunResults:
    """``run_dir/results.json``, checked (:class:`RunFolderError` when missing or invalid)."""
    return read_results(RunFolder(Path(run_dir)).results)


def score_view(r: RunResults, scale: ScorecardScale, grades: RiskGrades) -> ScoreView | None:
    """The federated model's test-score histograms, when they hold both classes."""
    hist = r.score_histograms
    if hist is None or sum(hist.bad) == 0 or sum(hist.good) == 0:
        return None
    fitted_on = "" if r.calibration is None else r.calibration.fitted_on
    return ScoreView(hist, scale, grades, calibration_map(r), fitted_on)


def _curve_specs(r: RunResults, view: ScoreView, grade_rows: list[GradeSummary]
                 ) -> list[FigureSpec]:
    bad, good = view.bad, view.good
    auc, ks = value_at(r, ("federated", "auc")), value_at(r, ("federated", "ks"))
    rows = names.test_rows_phrase(r)
    x, y = cap_curve(bad, good)
    bad_rate = float(bad.sum() / (bad + good).sum())
    return [
        ("fig-roc", "ROC curve", f"ROC of the federated model on {rows} (from the summed score "
         "histograms).", lambda: figs.roc_figure(bad, good, auc)),
        ("fig-ks", "KS curve", "Cumulative shares of bads and goods by score; the vertical line "
         "marks the KS of the Summary table.",
         lambda: figs.ks_figure(bad, good, view.scores, ks=ks)),
        ("fig-score-grades", "Score distribution by grade", f"Rows of {rows} by score, coloured "
         "by grade, and each grade's size and default rate.",
         lambda: figs.score_grade_figure(bad, good, view.scores, view.grades, grade_rows)),
        ("fig-gains", "Gains (CAP) curve", "Share of all bads among the riskiest rows; the "
         "accuracy ratio is the Gini of the Summary table.",
         lambda: figs.cap_figure(x, y, bad_rate, None if auc is None else 2 * auc - 1)),
    ]


def figure_specs(r: RunResults, view: ScoreView | None, grade_rows: list[GradeSummary]
                 ) -> list[FigureSpec]:
    """The figures this results.json supports: (id, alt text, caption, draw)."""
    specs = _curve_specs(r, view, grade_rows) if view is not None else []
    bands = calibration_bands(r, view)
    if bands:
        calibrated = calibration_of(r) is not None
        caption = ("Observed default rate against the calibrated mean PD per band, on the "
                   "held-out rows." if calibrated else "Not calibrated (run predates "
                   "calibration): observed default rate against the model's raw PD per band.")
        specs.append(("fig-calibration", "Calibration: predicted vs observed default rate",
                      caption, lambda: figs.calibration_figure(bands, calibrated=calibrated)))
    if isinstance(r, HorizontalResults) and r.history:
        history, step = r.history, "tree" if r.trees is not None else "round"
        local = r.local_only.mean_auc if r.local_only else None
        specs.append(("fig-auc-rounds", f"AUC per {step}", f"Federated test AUC after each {step}; "
                      f"'{names.LOCAL_ONLY_MEAN}' as in the Summary table.",
                      lambda: figs.auc_rounds_figure(history, value_at(r, ("centralized", "auc")),
                                                     local)))
    per_bank = value_at(r, ("local_only", "per_bank"))
    if per_bank and not many_banks(r):
        specs.append(("fig-banks", "Own-test AUC per bank", "Own-test AUC: each model on each "
                      "bank's own test rows (the Banks table); not the Summary's local-only "
                      "rows, which are on all banks' test rows.", lambda: figs.banks_figure(per_bank)))
    iv = value_at(r, ("iv",))
    if iv:
        specs.append(("fig-iv", "Information value by feature", "Information value of each "
                      "binned feature (0.02 / 0.1 / 0.3: weak / medium / strong).",
                      lambda: figs.iv_figure(iv)))
    gain = value_at(r, ("trees", "gain"))
    if gain and any(v > 0 for v in gain.values()):
        specs.append(("fig-gain", "Feature importance by total gain", "Total split gain of each "
                      "feature over all trees (features never split on are left out).",
                      lambda: figs.gain_figure(gain)))
    return specs


def _title(r: RunResults) -> str:
    if isinstance(r, VerticalResults):
        bank = Path(r.bank_data or str(r.config.get("bank-data") or "")).name
        return "fedcredit vertical run report" + (f" - {bank}" if bank else "")
    return "fedcredit run report" + (f" - {Path(r.dataset).name}" if r.dataset else "")


def build_report(
    results: RunResults, *, scale: ScorecardScale | None = None,
    grades: RiskGrades | None = None, title: str | None = None,
    context: RunContext | None = None,
) -> str:
    """The report's HTML text (self-contained: CSS inline, figures as data URIs)."""
    scale, grades = scale or ScorecardScale(), grades or RiskGrades()
    context = context or RunContext()
    view = score_view(results, scale, grades)
    grade_rows = ([] if view is None else
                  grade_table_from_scores(grades, view.scores, view.bad, view.good))
    specs = figure_specs(results, view, grade_rows)
    figures = "".join(figure_html(i, alt, cap, draw()) for i, alt, cap, draw in specs)
    curves = ([grade_section(view, grade_rows), cutoff_section(view), gains_section(view)]
              if view is not None else
              [note("No score histograms with both classes in results.json: ROC, KS, grades, "
                    "cut-offs and gains omitted.")])
    parts = [summary_section(results), "<h2>Figures</h2>", f'<div id="figures">{figures}</div>',
             *curves, calibration_section(results, view),
             stability_section(results, None if view is None else view.bad + view.good,
                               None if view is None else view.scores, grades),
             privacy_section(results),
             model_section(results, context.run_dir, scale, grades,
                           calibration_map(results)), trees_section(results),
             history_section(results), banks_section(results), iv_section(results),
             identity_section(results, context), settings_section(results)]
    return page(title or _title(results), "".join(parts))


def write_report(
    run_dir: str | Path, *, out: str | Path | None = None, scale: ScorecardScale | None = None,
    grades: RiskGrades | None = None,
) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``)."""
    results = load_results(run_dir)
    path = Path(out) if out else RunFolder(Path(run_dir)).report
    html = build_report(results, scale=scale, grades=grades,
                        context=run_context(Path(run_dir), results))
    atomic_write_text(path, html)
    return path

