"""``fedcredit report``: one self-contained HTML file from a run folder's ``results.json``.

Every number in the page is formatted from ``results.json`` (read as a typed document,
:mod:`federation.run.results`): each sits in a
``<span data-key='["path", "to", "value"]' data-format=".4f">`` so a test can check it, and the
few derived numbers (Gini, the grade table from the score histograms) carry ``data-derived``.
A key path is the chain of field names (and list positions) from the document to the value;
the documents' field names are their JSON keys, so the same path finds the value in the file.
Figures are PNGs embedded as data URIs (``<img class="figure">`` inside ``<figure id=...>``); the
page loads nothing from outside.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from fedcredit.report import figures as figs
from federation.run.folder import RunFolder
from federation.run.results import (
    HorizontalResults,
    LocalOnly,
    RunResults,
    TreeSummary,
    read_results,
)
from federation.scorecard.scale import GradeSummary, RiskGrades, ScorecardScale, grade_table_from_histograms

PRIVACY_MODES = {
    "plain": "Plain aggregation: the coordinator sees each bank's weighted model update and the "
             "summed score histograms in the clear; rows, labels and IDs never leave a bank.",
    "paillier": "Paillier aggregation: banks encrypt their updates and statistics under a key the "
                "coordinator does not hold; it adds ciphertexts and sees only the global AUC/KS "
                "(and the final model if the run releases it); rows, labels and IDs never leave "
                "a bank.",
}
TREE_PRIVACY_MODES = {
    "plain": "Plain aggregation (boosted trees): the coordinator sees each bank's gradient and "
             "hessian histograms of the requested nodes, the trees and the summed score "
             "histograms in the clear; rows, labels, gradients and IDs never leave a bank.",
    "paillier": "Paillier aggregation (boosted trees): banks encrypt their histograms under a key "
                "the coordinator does not hold; it adds ciphertexts and sees neither a histogram "
                "nor the trees (only the released model if the run releases it); rows, labels "
                "and IDs never leave a bank.",
}
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
figcaption{font-size:.85rem;color:#555;max-width:460px}.note{color:#666;font-size:.9rem}"""


def load_results(run_dir: str | Path) -> RunResults:
    """``run_dir/results.json``, checked (:class:`RunFolderError` when missing or invalid)."""
    return read_results(RunFolder(Path(run_dir)).results)


def value_at(results: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` or None where it is absent.

    ``path`` holds field names (of a results document or one of its sections), keys (of a
    mapping) and list positions, so it finds the same value in the typed document and in the
    decoded JSON file.
    """
    value = results
    for step in path:
        if is_dataclass(value) and isinstance(step, str) and step in _field_names(value):
            value = getattr(value, step)
        elif isinstance(value, Mapping) and step in value:
            value = value[step]
        elif (isinstance(value, (list, tuple)) and isinstance(step, int)
              and 0 <= step < len(value)):
            value = value[step]
        else:
            return None
    return value


def _field_names(document: Any) -> set[str]:
    return {f.name for f in fields(document)}


def num(results: RunResults, *path: str | int, spec: str = "") -> str:
    """A value from ``results`` formatted with ``spec``, tagged with its path for checking."""
    value = value_at(results, path)
    text = "n/a" if value is None else format(value, spec)
    key = escape(json.dumps(list(path)), quote=True)
    return f'<span class="num" data-key="{key}" data-format="{escape(spec)}">{escape(text)}</span>'


def derived(text: str, kind: str) -> str:
    """A number computed from results.json values (checked by recomputation in the tests)."""
    return f'<span class="num" data-derived="{escape(kind)}">{escape(text)}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _gini(results: RunResults, section: str) -> str:
    auc = value_at(results, (section, "auc"))
    return derived("n/a" if auc is None else f"{2 * auc - 1:.4f}", "gini")


def summary_section(r: RunResults) -> str:
    """Headline AUC/KS/Gini of the federated, centralised and local-only models."""
    aggregation = value_at(r, ("aggregation",))
    rows = [[f"federated ({escape(str(aggregation or '?'))})", num(r, "federated", "auc",
             spec=".4f"), num(r, "federated", "ks", spec=".4f"), _gini(r, "federated")]]
    if r.centralized is not None:
        rows.append(["centralised (pooled)", num(r, "centralized", "auc", spec=".4f"),
                     num(r, "centralized", "ks", spec=".4f"), _gini(r, "centralized")])
    if _local_only(r) is not None:
        rows.append(["local-only (mean over banks)", num(r, "local_only", "mean_auc", spec=".4f"),
                     "", ""])
    note = "" if r.centralized is not None else (
        '<p class="note">No baselines in results.json (a deployment coordinator holds no data).</p>')
    return ("<h2>Summary</h2>" + _table(["model", "AUC", "KS", "Gini"], rows, "summary")
            + note + "<p>Test AUC and KS on the union of the banks' test rows.</p>")


def _local_only(r: RunResults) -> LocalOnly | None:
    return r.local_only if isinstance(r, HorizontalResults) else None


def settings_section(r: RunResults) -> str:
    """The run's settings and what its privacy mode reveals to whom."""
    mode = str(value_at(r, ("aggregation",)) or value_at(r, ("config", "aggregation"))
               or "unknown")
    modes = TREE_PRIVACY_MODES if _trees(r) is not None else PRIVACY_MODES
    privacy = modes.get(mode, f"Aggregation mode '{mode}'.")
    head = [["data set", num(r, "dataset")], ["rows", num(r, "rows", spec=",")],
            ["banks", num(r, "banks")], ["rounds", num(r, "rounds")], ["model", num(r, "model")],
            ["federated seconds", num(r, "federated_seconds", spec=".1f")],
            ["wall seconds", num(r, "wall_seconds", spec=".1f")]]
    config = [[escape(k), num(r, "config", k)] for k in sorted(r.config or {})]
    return (f'<h2>Settings and privacy mode</h2><p id="privacy-mode"><b>{escape(mode)}</b>: '
            f"{escape(privacy)}</p>" + _table(["run", "value"], head, "run-facts")
            + _table(["setting", "value"], config, "settings"))


def grade_section(rows: list[GradeSummary], scale: ScorecardScale) -> str:
    """Size and default rate per grade of the federated model's test scores."""
    def band(lo: float, hi: float) -> str:
        return (f">= {lo:g}" if math.isinf(hi) else f"< {hi:g}" if math.isinf(lo)
                else f"{lo:g} to < {hi:g}")
    body = [[escape(g.grade), escape(band(g.min_score, g.max_score)),
             derived(f"{g.count:,}", "grade-count"), derived(f"{g.share:.1%}", "grade-share"),
             derived("n/a" if math.isnan(g.default_rate) else f"{g.default_rate:.1%}",
                     "grade-default-rate")] for g in rows]
    return ("<h2>Risk grades</h2>" + _table(["grade", "score", "test rows", "share",
                                             "default rate"], body, "grades")
            + f"<p class=\"note\">Scale: {scale.base_score:g} points at {scale.base_odds:g}:1 "
              f"good:bad odds, {scale.pdo:g} points to double the odds. Grades from the summed "
              "test-score histograms (each bin graded at its centre).</p>")


def history_section(r: RunResults) -> str:
    """AUC, KS and time per round (per tree for a boosted-tree run)."""
    history = (r.history if isinstance(r, HorizontalResults) else None) or ()
    rows = [[num(r, "history", i, "round"), num(r, "history", i, "auc", spec=".4f"),
             num(r, "history", i, "ks", spec=".4f"), num(r, "history", i, "seconds", spec=".2f")]
            for i in range(len(history))]
    step, title = ("tree", "Trees") if _trees(r) is not None else ("round", "Rounds")
    return f"<h2>{title}</h2>" + _table([step, "AUC", "KS", "seconds"], rows, "history")


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
    if trees.lr_reference is not None:
        facts.append(["logistic regression on the pooled rows (reference AUC)",
                      num(r, "trees", "lr_reference", "auc", spec=".4f")])
    gain = trees.gain or {}
    rows = [[escape(k), num(r, "trees", "gain", k, spec=".4f")]
            for k in sorted(gain, key=lambda k: -gain[k])]
    return ('<h2 id="trees">Boosted trees</h2>' + _table(["model", "value"], facts, "tree-facts")
            + ("<h3>Feature importance (total split gain)</h3>"
               + _table(["feature", "total gain"], rows, "gain") if rows else ""))


def banks_section(r: RunResults) -> str:
    """Per bank: sizes and AUC of each model on the union and on its own test rows."""
    local_only = _local_only(r)
    if local_only is None:
        return ""
    rows = [[num(r, "local_only", "per_bank", i, "bank"),
             num(r, "local_only", "per_bank", i, "train_rows", spec=","),
             num(r, "local_only", "per_bank", i, "test_rows", spec=","),
             num(r, "local_only", "per_bank", i, "bad_rate", spec=".3f"),
             num(r, "local_only", "per_bank", i, "auc", spec=".4f"),
             num(r, "local_only", "per_bank", i, "own_test_auc", spec=".4f"),
             num(r, "local_only", "per_bank", i, "federated_own_test_auc", spec=".4f"),
             num(r, "local_only", "per_bank", i, "centralized_own_test_auc", spec=".4f")]
            for i in range(len(local_only.per_bank))]
    header = ["bank", "train rows", "test rows", "bad rate", "local-only AUC (all tests)",
              "local-only AUC (own test)", "federated AUC (own test)", "centralised AUC (own test)"]
    return "<h2>Banks</h2>" + _table(header, rows, "banks")


def iv_section(r: RunResults) -> str:
    """Information value per feature, where the run binned features."""
    iv = value_at(r, ("iv",))
    if not iv:
        return ""
    order = sorted(iv, key=lambda k: -iv[k])
    rows = [[escape(k), num(r, "iv", k, spec=".4f")] for k in order]
    return "<h2>Information value</h2>" + _table(["feature", "IV"], rows, "iv")


def figure_html(fig_id: str, alt: str, caption: str, png: bytes) -> str:
    """One embedded figure: ``<figure id=fig_id><img class="figure" alt=... src=data:...>``."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{escape(fig_id)}"><img class="figure" alt="{escape(alt)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(caption)}</figcaption>'
            "</figure>")


FigureSpec = tuple[str, str, str, Callable[[], bytes]]


def figure_specs(
    r: RunResults, scale: ScorecardScale, grades: RiskGrades, grade_rows: list[GradeSummary]
) -> list[FigureSpec]:
    """The figures this results.json supports: (id, alt text, caption, draw)."""
    specs: list[FigureSpec] = []
    hist = r.score_histograms
    if hist is not None and sum(hist.bad) > 0 and sum(hist.good) > 0:
        bad, good, span = np.asarray(hist.bad), np.asarray(hist.good), float(hist.range[1])
        specs += [
            ("fig-roc", "ROC curve", "ROC of the final federated model on all banks' test rows "
             "(from the summed score histograms).",
             lambda: figs.roc_figure(bad, good, value_at(r, ("federated", "auc")))),
            ("fig-ks", "KS curve", "Cumulative shares of bads and goods by score; the vertical "
             "line is the KS statistic.", lambda: figs.ks_figure(bad, good, scale, logit_range=span)),
            ("fig-score-grades", "Score distribution by grade", "Test rows by score, coloured by "
             "grade, and each grade's size and default rate.",
             lambda: figs.score_grade_figure(bad, good, scale, grades, grade_rows,
                                             logit_range=span)),
        ]
    history = value_at(r, ("history",))
    if history:
        step = "tree" if _trees(r) is not None else "round"
        specs.append(("fig-auc-rounds", f"AUC per {step}", f"Federated test AUC after each {step}.",
                      lambda: figs.auc_rounds_figure(history,
                                                     value_at(r, ("centralized", "auc")),
                                                     value_at(r, ("local_only", "mean_auc")))))
    per_bank = value_at(r, ("local_only", "per_bank"))
    if per_bank:
        specs.append(("fig-banks", "Local-only vs federated vs centralised per bank",
                      "AUC of each model on each bank's own test rows.",
                      lambda: figs.banks_figure(per_bank)))
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


def build_report(
    results: RunResults, *, scale: ScorecardScale | None = None,
    grades: RiskGrades | None = None, title: str | None = None,
) -> str:
    """The report's HTML text (self-contained: CSS inline, figures as data URIs)."""
    scale, grades = scale or ScorecardScale(), grades or RiskGrades()
    hist = results.score_histograms
    grade_rows = (grade_table_from_histograms(grades, scale, np.asarray(hist.bad),
                                              np.asarray(hist.good),
                                              logit_range=float(hist.range[1]))
                  if hist is not None else [])
    specs = figure_specs(results, scale, grades, grade_rows)
    figures = "".join(figure_html(i, alt, cap, draw()) for i, alt, cap, draw in specs)
    dataset = value_at(results, ("dataset",))
    name = Path(str("run" if dataset is None else dataset)).name
    title = title or f"fedcredit run report - {name}"
    parts = [
        summary_section(results), "<h2>Figures</h2>", f'<div id="figures">{figures}</div>',
        grade_section(grade_rows, scale) if grade_rows else
        '<p class="note">No score histograms in results.json: ROC, KS and grades omitted.</p>',
        trees_section(results), history_section(results), banks_section(results),
        iv_section(results),
        settings_section(results),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            + "".join(parts) + "</body></html>\n")


def write_report(
    run_dir: str | Path, *, out: str | Path | None = None, scale: ScorecardScale | None = None,
    grades: RiskGrades | None = None,
) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``)."""
    results = load_results(run_dir)
    path = Path(out) if out else RunFolder(Path(run_dir)).report
    html = build_report(results, scale=scale, grades=grades)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
