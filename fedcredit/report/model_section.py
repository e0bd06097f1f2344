"""The model itself: LR coefficients and scorecard points, tree settings and importance, IV.

A horizontal LR run folder holds the released global model (``model.npz`` and
``preprocessor.json``); its points are those of ``fedcredit export-scorecard`` at the report's
scale. Boosted trees show their settings, the lossless check and the total split gain per
feature from ``results.json``. A vertical run has no model at the coordinator: each party keeps
its own weights (or split thresholds), so the report says so and shows the information value
table both parties computed.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from fedcredit.report.page import derived, note, num, table, value_at
from federation.errors import FedCreditError
from federation.ml.calibration import PlattMap
from federation.run.results import HorizontalResults, RunResults, TreeSummary, VerticalResults
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import load_run_model


def _trees(r: RunResults) -> TreeSummary | None:
    return r.trees if isinstance(r, HorizontalResults) else None


def trees_section(r: RunResults) -> str:
    """A boosted-tree run: trees, depth, bins, shrinkage, the lossless check, gain per feature.

    The lossless check (``same_trees_as_centralized``) says whether every node of the federated
    trees equals the trees grown on the pooled rows with the same bins and settings; a
    deployed coordinator cannot check it (no pooled rows), shown as "not checked".
    """
    trees = _trees(r)
    if trees is None:
        return ""
    same = trees.same_trees_as_centralized
    check = derived("not checked" if same is None else "yes" if same else "no", "lossless")
    facts = [["trees", num(r, "trees", "trees")], ["depth", num(r, "trees", "depth")],
             ["bins per feature", num(r, "trees", "bins")],
             ["learning rate", num(r, "trees", "learning_rate", spec="g")],
             ["same trees as centralised (lossless)", check]]
    if trees.early_stopping_rounds:
        watched = "AUC" if trees.early_stopping_metric == "auc" else "log-loss"
        facts[1:1] = [[f"trees kept (early stopping, best validation {watched})",
                       num(r, "trees", "trees_kept")],
                      ["early-stopping rounds", num(r, "trees", "early_stopping_rounds")]]
    if trees.max_prediction_gap is not None:
        facts.append(["largest test-margin gap to centralised",
                      num(r, "trees", "max_prediction_gap", spec=".2e")])
    gain = trees.gain or {}
    rows = [[escape(k), num(r, "trees", "gain", k, spec=".4f")]
            for k in sorted(gain, key=lambda k: -gain[k])]
    return ('<h2 id="trees">Boosted trees</h2>' + table(["model", "value"], facts, "tree-facts")
            + ("<h3>Feature importance (total split gain)</h3>"
               + table(["feature", "total gain"], rows, "gain") if rows else ""))


def _scorecard_tables(card: LinearScorecard, pd_map: PlattMap | None) -> str:
    """Coefficients and points; with a Platt map also the points after calibration.

    The calibrated log-odds are ``slope * (model log-odds) + intercept``, so a feature's
    calibrated points are ``slope`` times its model points, and the base points move by the
    map's intercept.
    """
    slope = None if pd_map is None else pd_map.slope

    def after(points: float) -> list[str]:
        return [] if slope is None else [derived(f"{slope * points:+.2f}", "model-cal-points")]

    numeric = [[escape(n.feature), derived(f"{n.mean:.4g}", "model-mean"),
                derived(f"{n.std:.4g}", "model-std"),
                derived(f"{n.coefficient:+.4f}", "model-coefficient"),
                derived(f"{n.points_per_unit:+.2f}", "model-points"), *after(n.points_per_unit)]
               for n in card.numeric]
    categories = [[escape(f"{c.feature} = {b.category}"),
                   derived(f"{b.coefficient:+.4f}", "model-coefficient"),
                   derived(f"{b.points:+.2f}", "model-points"), *after(b.points)]
                  for c in card.categorical for b in c.bins]
    base = (f"<p>Intercept {derived(f'{card.intercept:+.4f}', 'model-intercept')}; base points "
            f"(every standardised feature at its mean, no category) "
            f"{derived(f'{card.base_points:.2f}', 'model-base-points')}")
    if pd_map is not None:
        scale = card.scale
        calibrated_base = scale.offset - scale.factor * float(
            pd_map.log_odds(np.array([card.intercept]))[0])
        base += (f"; after calibration {derived(f'{calibrated_base:.2f}', 'model-cal-base')}")
    extra = [] if slope is None else ["points after calibration"]
    return (base + ".</p>"
            + table(["numeric feature", "mean", "std", "coefficient",
                     "points per std above the mean", *extra], numeric, "coefficients")
            + (table(["category", "coefficient", "points", *extra], categories,
                     "category-points") if categories else ""))


def model_section(r: RunResults, run_dir: Path | None, scale: ScorecardScale,
                  grades: RiskGrades, pd_map: PlattMap | None = None) -> str:
    """The model's coefficients and points, its tree importance, or why neither is shown."""
    head = '<h2 id="model">The model</h2>'
    if isinstance(r, VerticalResults):
        return head + note("A vertical model stays with its parties: the bank and the credit "
                           "center each keep their own weights (SecureBoost: the center keeps "
                           "its split thresholds), so the coordinator holds no coefficients. "
                           "The information value of every feature, which both computed "
                           "together, is below.")
    kind = r.model or str((r.config or {}).get("model") or "")
    if kind == "gbdt":
        return head + note("Boosted trees: settings and feature importance by total split gain "
                           "in the Boosted trees section.")
    if kind == "mlp":
        return head + note("A neural network (MLP) has no per-feature coefficients; "
                           "`fedcredit score` gives reason codes for LR and trees only.")
    if run_dir is None:
        return head + note("Coefficients: not shown (the report was built without the run "
                           "folder).")
    try:
        card = load_run_model(run_dir).scorecard(scale, grades)
    except FedCreditError:
        return head + note("Coefficients: not available. The run folder holds no released "
                           "model (model.npz and preprocessor.json): a deployed coordinator "
                           "or a run with release-model off keeps the model at the banks.")
    return (head + _scorecard_tables(card, pd_map)
            + note("The logistic regression on the standardised features, as `fedcredit "
                   "export-scorecard` writes it: points = -factor x coefficient (more points, "
                   "less risk)" + ("; after calibration each is multiplied by the Platt "
                                   "map's slope." if pd_map is not None else ".")))


def iv_section(r: RunResults) -> str:
    """Information value per feature, where the run binned features."""
    iv = value_at(r, ("iv",))
    if not iv:
        return ""
    bank_columns = set(value_at(r, ("bank_columns",)) or value_at(r, ("bank_features",)) or ())
    order = sorted(iv, key=lambda k: -iv[k])
    rows = [[escape(k), escape("bank" if k in bank_columns else "center"),
             num(r, "iv", k, spec=".4f")] for k in order]
    return ('<h2 id="iv">Information value</h2>'
            + table(["feature", "party", "IV"], rows, "iv")
            + note("0.02 / 0.1 / 0.3: weak / medium / strong (the usual bands)."))
