"""Scorecard scaling (points from P(bad)) and risk grades A-E with their default rates.

Sign convention, stated once: ``base_odds`` are **good:bad** odds (50 means 50 goods per bad at
``base_score``), and more points mean less risk. With ``factor = pdo / ln 2`` and
``offset = base_score - factor * ln(base_odds)``::

    points = offset + factor * ln(good:bad odds) = offset - factor * ln(p / (1 - p))

where ``p`` is P(bad) and ``ln(p / (1 - p))`` is the model's log-odds of default (the LR's
linear predictor). Every ``pdo`` points double the good:bad odds. Defaults: 600 points at 50:1,
PDO 20, so ``factor = 28.8539``, ``offset = 487.1229`` and P(bad) = 0.5 scores 487.12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from federation.errors import ConfigError
from federation.ml.calibration import PlattMap
from federation.ml.metrics import LOGIT_RANGE

DEFAULT_CUTOFFS = (560.0, 540.0, 520.0, 500.0)
"""Lowest score of grades A, B, C, D; below the last cut-off is E. At the default scale they are
good:bad odds of 12.5, 6.25, 3.1 and 1.6 to 1 (P(bad) about 7%, 14%, 24% and 39%)."""
DEFAULT_LABELS = ("A", "B", "C", "D", "E")
PROBABILITY_EPS = 1e-15


@dataclass(frozen=True)
class ScorecardScale:
    """Points-to-odds scaling: ``base_score`` points at ``base_odds``:1 good:bad, ``pdo`` points
    to double the odds.

    Raises
    ------
    ConfigError
        ``base_odds`` or ``pdo`` not positive, or a value not finite.
    """

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        for name in ("base_score", "base_odds", "pdo"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"scorecard setting '{name}' must be a finite number.")
        if self.base_odds <= 0:
            raise ConfigError(
                f"scorecard base odds must be positive good:bad odds, e.g. 50 for 50:1 "
                f"(got {self.base_odds})."
            )
        if self.pdo <= 0:
            raise ConfigError(f"scorecard PDO (points to double the odds) must be positive "
                              f"(got {self.pdo}).")
        if not (math.isfinite(self.factor) and math.isfinite(self.offset)):
            raise ConfigError(f"scorecard PDO {self.pdo:g} or base score {self.base_score:g} is "
                              "too large: the points scale overflows; use customary values "
                              "(e.g. PDO 20, base score 600).")

    @property
    def factor(self) -> float:
        """Points per unit of ln(odds): ``pdo / ln 2``."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at even odds (P(bad) = 0.5): ``base_score - factor * ln(base_odds)``."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def points_from_log_odds(self, log_odds_bad: np.ndarray | float) -> np.ndarray:
        """``offset - factor * log_odds_bad`` (log-odds of default -> points)."""
        return self.offset - self.factor * np.asarray(log_odds_bad, dtype=np.float64)

    def points(self, probability: np.ndarray | float) -> np.ndarray:
        """Points for P(bad); probabilities are clipped to [1e-15, 1 - 1e-15]."""
        p = np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        return self.points_from_log_odds(np.log(p) - np.log1p(-p))

    def log_odds(self, points: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`points_from_log_odds`: ``(offset - points) / factor``."""
        return (self.offset - np.asarray(points, dtype=np.float64)) / self.factor

    def probability(self, points: np.ndarray | float) -> np.ndarray:
        """P(bad) at a score: ``1 / (1 + exp((points - offset) / factor))``."""
        return 1.0 / (1.0 + np.exp(-self.log_odds(points)))

    def to_dict(self) -> dict[str, float]:
        """Settings and the derived factor and offset (for JSON)."""
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo,
                "factor": self.factor, "offset": self.offset}


@dataclass(frozen=True)
class RiskGrades:
    """Grades by score cut-offs: ``score >= cutoffs[0]`` is ``labels[0]`` (best), and so on;
    below ``cutoffs[-1]`` is ``labels[-1]`` (worst).

    Raises
    ------
    ConfigError
        Cut-offs not strictly decreasing, or not exactly one more label than cut-offs.
    """

    cutoffs: tuple[float, ...] = DEFAULT_CUTOFFS
    labels: tuple[str, ...] = DEFAULT_LABELS

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.cutoffs) + 1:
            raise ConfigError(
                f"risk grades need one more label than cut-offs: {len(self.labels)} labels "
                f"({', '.join(self.labels)}) for {len(self.cutoffs)} cut-offs."
            )
        cuts = np.asarray(self.cutoffs, dtype=np.float64)
        if not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) >= 0):
            raise ConfigError(
                f"grade cut-offs must be finite and strictly decreasing, best grade first, "
                f"e.g. 560,540,520,500 (got {','.join(f'{c:g}' for c in self.cutoffs)})."
            )

    @classmethod
    def parse(cls, text: str, labels: tuple[str, ...] | None = None) -> RiskGrades:
        """From ``"560,540,520,500"``; labels default to A, B, C, ... (one more than cut-offs)."""
        try:
            cuts = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError as exc:
            raise ConfigError(
                f"grade cut-offs '{text}' are not comma-separated numbers, e.g. 560,540,520,500."
            ) from exc
        return cls(cuts, labels or tuple(chr(ord("A") + i) for i in range(len(cuts) + 1)))

    def index(self, scores: np.ndarray) -> np.ndarray:
        """Grade position per score (0 = best)."""
        ascending = np.asarray(self.cutoffs[::-1], dtype=np.float64)
        s = np.asarray(scores, dtype=np.float64)
        return len(ascending) - np.searchsorted(ascending, s, side="right")

    def assign(self, scores: np.ndarray) -> np.ndarray:
        """Grade label per score."""
        return np.asarray(self.labels, dtype=object)[self.index(scores)]

    def bands(self) -> list[tuple[str, float, float]]:
        """``(label, lowest score, score it stays below)`` per grade; open ends are +-inf."""
        edges = [math.inf, *self.cutoffs, -math.inf]
        return [(label, edges[i + 1], edges[i]) for i, label in enumerate(self.labels)]


@dataclass(frozen=True)
class GradeSummary:
    """One grade's band, size and observed default rate.

    ``bads`` is None and ``default_rate`` NaN when there are no labels; ``default_rate`` is
    also NaN for an empty grade.
    """

    grade: str
    min_score: float
    max_score: float
    count: int
    bads: int | None
    share: float
    default_rate: float


def _summaries(
    grades: RiskGrades, counts: np.ndarray, bads: np.ndarray | None
) -> list[GradeSummary]:
    total = max(float(counts.sum()), 1.0)
    out = []
    for i, (label, low, high) in enumerate(grades.bands()):
        n = int(round(counts[i]))
        b = None if bads is None else int(round(bads[i]))
        rate = b / n if (b is not None and n) else math.nan
        out.append(GradeSummary(label, low, high, n, b, n / total, rate))
    return out


def grade_table(
    grades: RiskGrades, scores: np.ndarray, y: np.ndarray | None = None
) -> list[GradeSummary]:
    """Count, share and (with 0/1 labels ``y``, 1 = bad) default rate per grade."""
    idx = grades.index(scores)
    k = len(grades.labels)
    if y is None:
        return _summaries(grades, np.bincount(idx, minlength=k), None)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != idx.shape:
        raise ValueError(f"scores {idx.shape} and labels {y.shape} differ in length.")
    return _summaries(grades, np.bincount(idx, minlength=k), np.bincount(idx, weights=y, minlength=k))


def histogram_bin_scores(scale: ScorecardScale, bins: int, *,
                         logit_range: float = LOGIT_RANGE,
                         calibration: PlattMap | None = None) -> np.ndarray:
    """Points at the centre of each logit bin of :func:`federation.ml.metrics.score_histograms`
    (of the calibrated PD when the run's ``calibration`` map is given)."""
    edges = np.linspace(-logit_range, logit_range, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2.0
    return scale.points_from_log_odds(centres if calibration is None
                                      else calibration.log_odds(centres))


def grade_table_from_histograms(
    grades: RiskGrades, scale: ScorecardScale, bad: np.ndarray, good: np.ndarray, *,
    logit_range: float = LOGIT_RANGE, calibration: PlattMap | None = None,
) -> list[GradeSummary]:
    """Grade table from summed per-class logit histograms (no row-level scores needed); with
    the run's ``calibration`` map the grades are of the calibrated PD (as scoring assigns them).

    Each bin is graded at its centre, so a bin straddling a cut-off (width
    ``2 * logit_range / bins`` logit, 0.68 points at the default scale with 1,024 bins) counts
    wholly on one side.
    """
    bad = np.asarray(bad, dtype=np.float64)
    good = np.asarray(good, dtype=np.float64)
    idx = grades.index(histogram_bin_scores(scale, bad.size, logit_range=logit_range,
                                            calibration=calibration))
    k = len(grades.labels)
    counts = np.bincount(idx, weights=bad + good, minlength=k)
    return _summaries(grades, counts, np.bincount(idx, weights=bad, minlength=k))
