"""A trained logistic regression as a points scorecard, and its plain-JSON export.

The LR scores the standardised design matrix of :class:`federation.ml.preprocess.Preprocessor`:
``log_odds = intercept + sum_j w_j * x_j`` with ``x_j = clip((value - mean) / std, +-clip_z)``
(0 when missing) for a numeric column and ``x_j`` = 1 if the row has that category, else 0. By
the scaling of :mod:`federation.scorecard.scale` that is, exactly::

    score = base_points + sum_numeric points_per_unit * z + sum_categorical points[category]
    base_points = offset - factor * intercept,  points_per_unit = -factor * w,
    points[category] = -factor * w_category   (an unseen or missing category scores 0)

The JSON export (:meth:`LinearScorecard.to_json`) holds those numbers, the grade cut-offs and
a pure-Python recipe (:data:`PYTHON_RECIPE`) so a bank can score without this project installed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from federation.data.table import MISSING_TOKENS, NUMERIC_MISSING_TOKENS
from federation.errors import ConfigError, SchemaError
from federation.ml.preprocess import CLIP_Z, Preprocessor
from federation.scorecard.scale import RiskGrades, ScorecardScale

SCORECARD_FORMAT = "fedcredit-linear-scorecard"
SCORECARD_SCHEMA_VERSION = 1

PYTHON_RECIPE = '''\
import json, math

def load_scorecard(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)

def score_row(card, row):
    """row: {column: text} as csv.DictReader gives it -> (points, p_bad, grade)."""
    points = card["base_points"]
    for f in card["numeric"]:
        text = row[f["feature"]].strip()
        z = 0.0
        if text.lower() not in card["numeric_missing_values"]:
            z = (float(text) - f["mean"]) / f["std"]
            z = max(-card["clip_z"], min(card["clip_z"], z))
        points += f["points_per_unit"] * z
    for f in card["categorical"]:
        text = row[f["feature"]].strip()
        points += next((b["points"] for b in f["bins"] if b["category"] == text), 0.0)
    s = card["scale"]
    p_bad = 1.0 / (1.0 + math.exp((points - s["offset"]) / s["factor"]))
    grade = next((g["grade"] for g in card["grades"]
                  if g["min_score"] is None or points >= g["min_score"]), None)
    return points, p_bad, grade
'''
"""Stdlib-only scoring of one CSV row with the exported JSON (also stored in the JSON)."""


class UnsupportedModelError(ConfigError):
    """The run's model cannot be turned into a points scorecard (only LR can)."""


@dataclass(frozen=True)
class NumericPoints:
    """A numeric column: standardisation and points per standard deviation above the mean."""

    feature: str
    mean: float
    std: float
    coefficient: float
    points_per_unit: float


@dataclass(frozen=True)
class CategoryPoints:
    """One category (bin) of a categorical column and its points."""

    category: str
    coefficient: float
    points: float


@dataclass(frozen=True)
class CategoricalPoints:
    """A categorical column; ``reference`` is its most frequent category in training."""

    feature: str
    bins: tuple[CategoryPoints, ...]

    @property
    def reference(self) -> str | None:
        """The modal training category (the preprocessor keeps categories most frequent first)."""
        return self.bins[0].category if self.bins else None


@dataclass(frozen=True)
class LinearScorecard:
    """A horizontal LR as points. Build with :meth:`from_lr`, save with :meth:`to_json`."""

    scale: ScorecardScale
    grades: RiskGrades
    intercept: float
    numeric: tuple[NumericPoints, ...]
    categorical: tuple[CategoricalPoints, ...]
    clip_z: float = CLIP_Z
    n_rows: int = 0
    target: str = ""
    id_column: str = ""

    @classmethod
    def from_lr(
        cls, prep: Preprocessor, weights: list[np.ndarray], *, scale: ScorecardScale,
        grades: RiskGrades, target: str = "", id_column: str = "",
    ) -> LinearScorecard:
        """Scorecard of an LR's ``[W (1, F), b (1,)]`` over ``prep``'s feature layout.

        Raises
        ------
        UnsupportedModelError
            The weights are not a single linear layer of width ``prep.n_features``.
        """
        if len(weights) != 2 or np.shape(weights[0]) != (1, prep.n_features) \
                or np.size(weights[1]) != 1:
            shapes = ", ".join(str(np.shape(w)) for w in weights)
            raise UnsupportedModelError(
                f"only a logistic regression (weights (1, {prep.n_features}) and (1,)) can be "
                f"exported as a scorecard; this model has weights {shapes}. Train with --model lr."
            )
        w = np.asarray(weights[0], dtype=np.float64).ravel()
        k = len(prep.numeric)
        numeric = tuple(
            NumericPoints(name, float(m), float(s), float(c), float(-scale.factor * c))
            for name, m, s, c in zip(prep.numeric, prep.means, prep.stds, w[:k], strict=True)
        )
        categorical, pos = [], k
        for col, vocab in prep.categorical:
            coefs = w[pos : pos + len(vocab)]
            pos += len(vocab)
            categorical.append(CategoricalPoints(col, tuple(
                CategoryPoints(v, float(c), float(-scale.factor * c))
                for v, c in zip(vocab, coefs, strict=True)
            )))
        return cls(scale, grades, float(np.ravel(weights[1])[0]), numeric, tuple(categorical),
                   CLIP_Z, prep.n_rows, target, id_column)

    @property
    def base_points(self) -> float:
        """Points of an all-zero design row: ``offset - factor * intercept``."""
        return self.scale.offset - self.scale.factor * self.intercept

    @property
    def feature_names(self) -> list[str]:
        """Design-matrix columns, in :attr:`Preprocessor.feature_names` order."""
        names = [n.feature for n in self.numeric]
        for c in self.categorical:
            names.extend(f"{c.feature}={b.category}" for b in c.bins)
        return names

    @property
    def coefficients(self) -> np.ndarray:
        """LR weights per design column."""
        return np.array([n.coefficient for n in self.numeric]
                        + [b.coefficient for c in self.categorical for b in c.bins])

    @property
    def points_per_feature(self) -> np.ndarray:
        """Points per unit of each design column (``-factor * w``)."""
        return -self.scale.factor * self.coefficients

    def preprocessor(self) -> Preprocessor:
        """The feature layout and standardisation as a :class:`Preprocessor`."""
        return Preprocessor(
            tuple(n.feature for n in self.numeric), tuple(n.mean for n in self.numeric),
            tuple(n.std for n in self.numeric),
            tuple((c.feature, tuple(b.category for b in c.bins)) for c in self.categorical),
            self.n_rows,
        )

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of default per design row (float64 whatever the input dtype)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise SchemaError(f"design matrix has shape {x.shape}; the scorecard expects "
                              f"{len(self.feature_names)} columns.")
        return x.astype(np.float64, copy=False) @ self.coefficients + self.intercept

    def points(self, x: np.ndarray) -> np.ndarray:
        """Score per design row (same as ``scale.points_from_log_odds(log_odds(x))``)."""
        return self.scale.points_from_log_odds(self.log_odds(x))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (see the module docstring for the maths)."""
        return {
            "format": SCORECARD_FORMAT, "schema_version": SCORECARD_SCHEMA_VERSION,
            "description": _DESCRIPTION, "target": self.target, "id_column": self.id_column,
            "training_rows": self.n_rows, "scale": self.scale.to_dict(),
            "intercept": self.intercept, "base_points": self.base_points, "clip_z": self.clip_z,
            "numeric_missing_values": sorted(NUMERIC_MISSING_TOKENS),
            "categorical_missing_values": sorted(MISSING_TOKENS),
            "numeric": [asdict(n) for n in self.numeric],
            "categorical": [{"feature": c.feature, "reference": c.reference,
                             "bins": [asdict(b) for b in c.bins]} for c in self.categorical],
            "grades": [{"grade": g, "min_score": None if math.isinf(lo) else lo}
                       for g, lo, _ in self.grades.bands()],
            "python_recipe": PYTHON_RECIPE,
        }

    def to_json(self) -> str:
        """The export file's text (indented JSON)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LinearScorecard:
        """Inverse of :meth:`to_json`; :class:`SchemaError` if ``text`` is not a scorecard."""
        try:
            raw = json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise SchemaError(f"scorecard file is not valid JSON ({exc}); re-export it with "
                              "`fedcredit export-scorecard`.") from exc
        if not isinstance(raw, dict):
            raw = {"format": type(raw).__name__}
        if raw.get("format") != SCORECARD_FORMAT or \
                raw.get("schema_version") != SCORECARD_SCHEMA_VERSION:
            raise SchemaError(
                f"not a {SCORECARD_FORMAT} v{SCORECARD_SCHEMA_VERSION} file (format "
                f"{raw.get('format')!r:.40}, version {raw.get('schema_version')!r:.20}); "
                "re-export it with `fedcredit export-scorecard`."
            )
        try:
            card = cls._from_dict(raw)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise SchemaError(f"scorecard file is damaged ({exc!r:.80}); re-export it with "
                              "`fedcredit export-scorecard`.") from exc
        _check_card(card)
        return card

    @classmethod
    def _from_dict(cls, raw: dict[str, Any]) -> LinearScorecard:
        s = raw["scale"]
        grades = raw["grades"]
        return cls(
            ScorecardScale(s["base_score"], s["base_odds"], s["pdo"]),
            RiskGrades(tuple(g["min_score"] for g in grades[:-1]),
                       tuple(g["grade"] for g in grades)),
            float(raw["intercept"]), tuple(NumericPoints(**n) for n in raw["numeric"]),
            tuple(CategoricalPoints(c["feature"], tuple(CategoryPoints(**b) for b in c["bins"]))
                  for c in raw["categorical"]),
            float(raw["clip_z"]), int(raw["training_rows"]), raw["target"], raw["id_column"],
        )


def _check_card(card: LinearScorecard) -> None:
    """Names are text; coefficients, points and standardisation are finite numbers."""
    numbers = [card.intercept, card.clip_z, *(getattr(n, f) for n in card.numeric for f in (
        "mean", "std", "coefficient", "points_per_unit")), *(getattr(b, f) for c in
        card.categorical for b in c.bins for f in ("coefficient", "points"))]
    names = [card.target, card.id_column, *(n.feature for n in card.numeric),
             *(c.feature for c in card.categorical),
             *(b.category for c in card.categorical for b in c.bins), *card.grades.labels]
    try:
        finite = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                     and math.isfinite(v) for v in numbers)
    except OverflowError:
        finite = False
    if not finite or not all(isinstance(v, str) for v in names) or any(
            n.std <= 0 for n in card.numeric) or card.n_rows < 0:
        raise SchemaError("scorecard file holds a non-numeric or non-finite coefficient, a "
                          "non-positive std or a non-text name; re-export it with "
                          "`fedcredit export-scorecard`.")


_DESCRIPTION = (
    "Logistic-regression scorecard exported by fedcredit. score = base_points + sum over numeric "
    "features of points_per_unit * z + sum over categorical features of the points of the row's "
    "category (0 if unseen or missing), where z = clip((value - mean) / std, -clip_z, clip_z) "
    "and z = 0 when the value is missing (one of numeric_missing_values, compared lower-cased). "
    "P(bad) = 1 / (1 + exp((score - scale.offset) / scale.factor)); points = offset - factor * "
    "ln(P(bad) / P(good)), so every pdo points double the good:bad odds. The grade is the first "
    "in 'grades' whose min_score the score reaches (the last grade has no minimum). "
    "'python_recipe' is a stdlib-only implementation of exactly this."
)
