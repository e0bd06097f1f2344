"""The run report's figures, drawn with matplotlib (Agg) and returned as PNG bytes.

Curves and distributions come from the summed per-class score histograms in ``results.json``
(the coordinator has no row-level scores); comparison charts from its AUC numbers (the typed
sections of :mod:`federation.run.results`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fedcredit.report.statistics import CalibrationBand  # noqa: E402
from federation.ml.credit_metrics import ks_curve_from_histograms, roc_curve_from_histograms  # noqa: E402
from federation.run.results import BankBaseline, RoundEntry  # noqa: E402
from federation.scorecard.scale import (  # noqa: E402
    GradeSummary,
    RiskGrades,
)

GRADE_COLOURS = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027", "#7f0000", "#4d0000")
SCORE_BIN_POINTS = 5.0
DPI = 96


def to_png(fig: Figure) -> bytes:
    """Render and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def roc_figure(bad: np.ndarray, good: np.ndarray, auc: float | None) -> bytes:
    """ROC curve of the federated model on the union of the banks' test rows."""
    fpr, tpr = roc_curve_from_histograms(bad, good)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    label = "federated" + (f" (AUC {auc:.4f})" if auc is not None else "")
    ax.plot(fpr, tpr, color="#2b5797", lw=2, label=label)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random")
    ax.set(xlabel="false positive rate (goods flagged)", ylabel="true positive rate (bads flagged)",
           title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return to_png(fig)


def ks_figure(bad: np.ndarray, good: np.ndarray, bin_scores: np.ndarray, *,
              ks: float | None = None) -> bytes:
    """Cumulative shares of bads and goods by score, with the largest gap marked.

    The legend gives ``ks`` (the KS of the report's tables) when known, so figure and table
    show one number; the line is drawn where the binned curves are furthest apart.
    """
    scores = np.asarray(bin_scores)[::-1]  # ascending
    cum_bad, cum_good = ks_curve_from_histograms(np.asarray(bad)[::-1], np.asarray(good)[::-1])
    used = np.flatnonzero(np.asarray(bad)[::-1] + np.asarray(good)[::-1])
    lo, hi = used[0], used[-1] + 1
    gap = np.abs(cum_bad - cum_good)
    at = int(np.argmax(gap))
    shown = gap[at] if ks is None else ks
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(scores[lo:hi], cum_bad[lo:hi], color="#d73027", lw=2, label="bads")
    ax.plot(scores[lo:hi], cum_good[lo:hi], color="#1a9850", lw=2, label="goods")
    ax.vlines(scores[at], cum_good[at], cum_bad[at], color="black", lw=1.5,
              label=f"KS {shown:.4f} at {scores[at]:.0f} points")
    ax.set(xlabel="score (points)", ylabel="cumulative share", title="KS curve", ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return to_png(fig)


def _score_bins(scores: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine histogram bins -> coarse score bins of SCORE_BIN_POINTS over the populated range."""
    used = np.flatnonzero(counts)
    low = np.floor(scores[used].min() / SCORE_BIN_POINTS) * SCORE_BIN_POINTS
    high = np.ceil(scores[used].max() / SCORE_BIN_POINTS) * SCORE_BIN_POINTS + SCORE_BIN_POINTS
    edges = np.arange(low, high + 1e-9, SCORE_BIN_POINTS)
    idx = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, len(edges) - 2)
    return edges, np.bincount(idx, weights=counts, minlength=len(edges) - 1)


def score_grade_figure(
    bad: np.ndarray, good: np.ndarray, bin_scores: np.ndarray, grades: RiskGrades,
    grade_rows: Sequence[GradeSummary],
) -> bytes:
    """Score distribution coloured by grade, and size and default rate per grade.

    ``bin_scores`` are the points of each histogram bin (after the calibration map, if any).
    """
    scores = np.asarray(bin_scores)
    edges, counts = _score_bins(scores, np.asarray(bad, float) + np.asarray(good, float))
    centres = (edges[:-1] + edges[1:]) / 2
    colours = [GRADE_COLOURS[i % len(GRADE_COLOURS)] for i in grades.index(centres)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 4.0),
                                      gridspec_kw={"width_ratios": [1.6, 1]})
    left.bar(centres, counts, width=SCORE_BIN_POINTS * 0.95, color=colours, edgecolor="none")
    for cut in grades.cutoffs:
        left.axvline(cut, color="grey", lw=0.8, ls=":")
    left.set(xlabel="score (points)", ylabel="test rows", title="Score distribution by grade")
    labels = [r.grade for r in grade_rows]
    sizes = [r.count for r in grade_rows]
    right.bar(labels, sizes, color=GRADE_COLOURS[: len(labels)])
    right.set(xlabel="grade", ylabel="test rows", title="Rows and default rate per grade")
    rate_ax = right.twinx()
    rates = [r.default_rate if r.count else np.nan for r in grade_rows]
    rate_ax.plot(labels, rates, color="black", marker="o", lw=1.5)
    rate_ax.set(ylabel="default rate", ylim=(0, max(1e-3, np.nanmax(rates) * 1.15)))
    fig.tight_layout()
    return to_png(fig)


def auc_rounds_figure(history: Sequence[RoundEntry], centralized: float | None,
                      local_mean: float | None) -> bytes:
    """Federated AUC per round, with the centralised and local-only references."""
    rounds = [h.round for h in history]
    aucs = [np.nan if h.auc is None else h.auc for h in history]
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(rounds, aucs, marker="o", color="#2b5797", lw=2, label="federated")
    if centralized is not None:
        ax.axhline(centralized, color="#7b3294", ls="--", label=f"centralised {centralized:.4f}")
    if local_mean is not None:
        ax.axhline(local_mean, color="#e66101", ls=":", label=f"local-only mean {local_mean:.4f}")
    ax.set(xlabel="round", ylabel="test AUC", title="AUC per round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
    return to_png(fig)


def banks_figure(per_bank: Sequence[BankBaseline]) -> bytes:
    """Per bank: own-test AUC (on that bank's test rows) of each model."""
    series = (([b.own_test_auc for b in per_bank], "local-only own-test", "#e66101"),
              ([b.federated_own_test_auc for b in per_bank], "federated own-test", "#2b5797"),
              ([b.centralized_own_test_auc for b in per_bank], "centralised own-test", "#7b3294"))
    x = np.arange(len(per_bank))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.6, 1.2 * len(per_bank) + 2), 4.2))
    for j, (aucs, label, colour) in enumerate(series):
        values = [np.nan if v is None else v for v in aucs]
        ax.bar(x + (j - 1) * width, values, width, label=label, color=colour)
    ax.set_xticks(x, [f"bank {b.bank}" for b in per_bank])
    ax.set(ylabel="own-test AUC (the bank's own test rows)", ylim=(0.5, 1.0),
           title="Own-test AUC per bank")
    ax.legend(loc="upper right", fontsize="small")
    return to_png(fig)


def iv_figure(iv: Mapping[str, float], *, top: int = 25) -> bytes:
    """Information value per feature (largest first), with the usual strength bands."""
    items = sorted(iv.items(), key=lambda kv: -kv[1])[:top][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(items) + 1.4))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#2b5797")
    for band in (0.02, 0.1, 0.3):
        ax.axvline(band, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="information value", title="Information value by feature")
    return to_png(fig)


def gain_figure(gain: Mapping[str, float], *, top: int = 25) -> bytes:
    """Boosted trees: total split gain per feature (largest first; zero-gain features left out)."""
    items = sorted(((k, v) for k, v in gain.items() if v > 0), key=lambda kv: -kv[1])[:top][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(items) + 1.4))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#2b5797")
    ax.set(xlabel="total split gain", title="Feature importance (boosted trees)")
    return to_png(fig)


def calibration_figure(bands: Sequence[CalibrationBand], *, calibrated: bool) -> bytes:
    """Observed default rate against mean PD per band, with the diagonal (perfect calibration)."""
    pd = np.array([b.mean_pd for b in bands])
    observed = np.array([b.observed_rate for b in bands])
    rows = np.array([b.rows for b in bands], dtype=np.float64)
    top = float(max(pd.max(initial=0.0), observed.max(initial=0.0), 0.05)) * 1.1
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, top], [0, top], color="grey", ls="--", lw=1, label="perfect calibration")
    label = "calibrated PD" if calibrated else "model PD (not calibrated)"
    ax.scatter(pd, observed, s=20 + 180 * rows / max(rows.max(initial=1.0), 1.0),
               color="#2b5797", alpha=0.8, label=label, zorder=3)
    ax.plot(pd, observed, color="#2b5797", lw=1)
    ax.set(xlabel="mean predicted PD of the band", ylabel="observed default rate",
           title="Calibration", xlim=(0, top), ylim=(0, top))
    ax.legend(loc="upper left", fontsize="small")
    return to_png(fig)


def cap_figure(rows_share: np.ndarray, bads_share: np.ndarray, bad_rate: float,
               gini: float | None) -> bytes:
    """Cumulative accuracy profile (gains): share of bads caught by the riskiest rows."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    label = "federated" + (f" (accuracy ratio {gini:.4f})" if gini is not None else "")
    ax.plot(rows_share, bads_share, color="#2b5797", lw=2, label=label)
    ax.plot([0, bad_rate, 1], [0, 1, 1], color="#1a9850", lw=1, ls="-.", label="perfect model")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random")
    ax.set(xlabel="share of test rows, riskiest first", ylabel="share of bads caught",
           title="Gains (CAP) curve", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return to_png(fig)
