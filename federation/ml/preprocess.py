"""Federated preprocessing: shared standardisation, imputation and one-hot vocabulary.

Protocol, two steps, both over aggregates only (no row leaves a bank):

1. *schema*: each bank reports its column names, their kinds and the category names it has
   seen; the coordinator takes the union (:func:`merge_schemas`) into a :class:`FeatureLayout`.
2. *stats*: each bank returns one flat vector of counts, sums, sums of squares and category
   counts in that layout (:func:`local_stats_vector`); the vectors are summed (in plaintext or
   under Paillier) and :func:`combine_stats` turns the sum into a :class:`Preprocessor`.

Security: category names and per-bank totals are revealed to the coordinator in plain mode;
individual rows and labels are not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from federation.data.table import CreditTable
from federation.errors import SchemaError

SCHEMA_VERSION = 1
MAX_CATEGORIES = 50
CLIP_Z = 10.0
"""Standardised values are clipped to [-CLIP_Z, CLIP_Z] so heavy tails do not dominate SGD."""


@dataclass(frozen=True)
class LocalSchema:
    """What one bank says about its columns (names and category names, no counts)."""

    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class FeatureLayout:
    """Agreed column order and category universe; fixes the layout of the stats vector."""

    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    schema_version: int = SCHEMA_VERSION

    @property
    def stats_length(self) -> int:
        """Length of the stats vector: row count, 3 per numeric column, categories + missing."""
        return 1 + 3 * len(self.numeric) + sum(len(v) + 1 for _, v in self.categorical)

    def to_json(self) -> str:
        """Serialise for a config record."""
        return json.dumps({"v": self.schema_version, "numeric": list(self.numeric),
                           "categorical": [[c, list(v)] for c, v in self.categorical]})

    @classmethod
    def from_json(cls, text: str) -> FeatureLayout:
        """Inverse of :meth:`to_json`; :class:`SchemaError` if ``text`` is not a layout."""
        raw = _load_document(text, "feature layout", ("v", "numeric", "categorical"))
        return cls(_names(raw["numeric"], "numeric"), _categories(raw["categorical"]), raw["v"])


@dataclass(frozen=True)
class Preprocessor:
    """Shared transform: impute with the federated mean, standardise, one-hot categories."""

    numeric: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    n_rows: int
    schema_version: int = SCHEMA_VERSION

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns, in order."""
        names = list(self.numeric)
        for col, vocab in self.categorical:
            names.extend(f"{col}={v}" for v in vocab)
        return names

    @property
    def n_features(self) -> int:
        """Number of model input columns."""
        return len(self.numeric) + sum(len(v) for _, v in self.categorical)

    def numeric_values(self, table: CreditTable) -> np.ndarray:
        """The federation's numeric columns of ``table``, raw float64 (NaN where missing).

        Raises
        ------
        SchemaError
            A numeric column the federation expects is missing or not numeric in the file.
        """
        missing = [c for c in self.numeric if c not in table.numeric.columns]
        if missing:
            raise SchemaError(
                f"{table.source}: numeric column(s) {', '.join(missing)} expected by the "
                "federation are missing or not numeric in this file."
            )
        return table.numeric[list(self.numeric)].to_numpy(dtype=np.float64)

    @staticmethod
    def category_values(table: CreditTable, col: str) -> np.ndarray:
        """The cells of categorical column ``col`` as category strings (None where missing);
        a column the file holds as numbers is rendered as a text column would hold it."""
        if col in table.categorical.columns:
            return table.categorical[col].to_numpy(dtype=object)
        if col in table.numeric.columns:
            return _numbers_as_categories(table.numeric[col])
        raise SchemaError(f"{table.source}: categorical column '{col}' is missing.")

    def transform(self, table: CreditTable) -> np.ndarray:
        """Rows of ``table`` as a float32 design matrix (runs on the data owner's node)."""
        blocks = []
        if self.numeric:
            x = self.numeric_values(table)
            z = (x - np.asarray(self.means)) / np.asarray(self.stds)
            blocks.append(np.clip(np.nan_to_num(z, nan=0.0), -CLIP_Z, CLIP_Z))
        for col, vocab in self.categorical:
            values = self.category_values(table, col)
            blocks.append(values[:, None] == np.asarray(vocab, dtype=object)[None, :])
        return np.hstack([b.astype(np.float32) for b in blocks]) if blocks else np.zeros(
            (table.n_rows, 0), np.float32)

    def to_json(self) -> str:
        """Serialise for a config record."""
        return json.dumps({"v": self.schema_version, "numeric": list(self.numeric),
                           "means": list(self.means), "stds": list(self.stds),
                           "categorical": [[c, list(v)] for c, v in self.categorical],
                           "n_rows": self.n_rows})

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        """Inverse of :meth:`to_json`; :class:`SchemaError` if ``text`` is not a preprocessor."""
        raw = _load_document(text, "preprocessor",
                             ("v", "numeric", "means", "stds", "categorical", "n_rows"))
        numeric = _names(raw["numeric"], "numeric")
        means = _numbers(raw["means"], "means", len(numeric))
        stds = _numbers(raw["stds"], "stds", len(numeric))
        if any(s <= 0 for s in stds):
            raise SchemaError("preprocessor 'stds' must be positive; re-create the run.")
        n_rows = raw["n_rows"]
        if type(n_rows) is not int or n_rows < 0:
            raise SchemaError("preprocessor 'n_rows' must be an integer >= 0.")
        return cls(numeric, means, stds, _categories(raw["categorical"]), n_rows, raw["v"])


def _load_document(text: str, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """Parse a JSON object with exactly ``keys`` and this build's schema version."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SchemaError(f"{what} is not valid JSON ({exc}); re-create it with this "
                          "fedcredit release.") from exc
    if not isinstance(raw, dict) or sorted(raw) != sorted(keys):
        raise SchemaError(f"{what} must be a JSON object with the keys {', '.join(keys)}.")
    if type(raw["v"]) is not int or raw["v"] != SCHEMA_VERSION:
        raise SchemaError(f"{what} schema version {raw['v']!r} is not supported (this build "
                          f"reads {SCHEMA_VERSION}); upgrade every node to the same release.")
    return raw


def _names(value: Any, what: str) -> tuple[str, ...]:
    """A list of distinct column or category names."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaError(f"'{what}' must be a list of names.")
    if len(set(value)) != len(value):
        raise SchemaError(f"'{what}' repeats a name.")
    return tuple(value)


def _numbers(value: Any, what: str, length: int) -> tuple[float, ...]:
    """``length`` finite floats."""
    if not isinstance(value, list) or len(value) != length or not all(
            type(v) in (int, float) for v in value):
        raise SchemaError(f"'{what}' must be a list of {length} numbers.")
    try:
        out = tuple(float(v) for v in value)
    except OverflowError as exc:
        raise SchemaError(f"'{what}' holds a number beyond the float range.") from exc
    if not all(math.isfinite(v) for v in out):
        raise SchemaError(f"'{what}' must hold finite numbers.")
    return out


def _categories(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``[[column, [category, ...]], ...]`` with distinct columns."""
    if not isinstance(value, list) or not all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
            for item in value):
        raise SchemaError("'categorical' must be a list of [column, [categories]] pairs.")
    _names([col for col, _ in value], "categorical")
    return tuple((col, _names(vocab, f"categorical {col}")) for col, vocab in value)


def _numbers_as_categories(values: pd.Series) -> np.ndarray:
    """Render numeric cells as the category strings a text column would hold."""
    return np.array([None if np.isnan(v) else f"{v:g}" for v in values], dtype=object)


def local_schema(table: CreditTable) -> LocalSchema:
    """Step 1 at a bank: column kinds and the category names seen (no counts, no rows)."""
    cats = {
        col: tuple(sorted({str(v) for v in table.categorical[col].dropna().unique()}))
        for col in table.categorical.columns
    }
    return LocalSchema(tuple(table.numeric.columns), cats)


def merge_schemas(schemas: list[LocalSchema]) -> FeatureLayout:
    """Step 1 at the coordinator: union of columns; a column typed differently becomes categorical."""
    if not schemas:
        raise SchemaError("no bank reported a schema; cannot agree on features.")
    numeric_sets = [set(s.numeric) for s in schemas]
    categorical_names = set().union(*(set(s.categorical) for s in schemas))
    all_numeric = set.intersection(*numeric_sets) - categorical_names
    ordered = [c for c in schemas[0].numeric if c in all_numeric]
    mixed = set().union(*numeric_sets) - all_numeric
    categorical = []
    for col in sorted(categorical_names | mixed):
        seen: set[str] = set()
        for s in schemas:
            seen.update(s.categorical.get(col, ()))
        categorical.append((col, tuple(sorted(seen))))
    return FeatureLayout(tuple(ordered), tuple(categorical))


def local_stats_vector(table: CreditTable, layout: FeatureLayout) -> np.ndarray:
    """Step 2 at a bank: [n, (count, sum, sumsq) per numeric, (counts..., missing) per category]."""
    parts: list[float] = [float(table.n_rows)]
    for col in layout.numeric:
        x = table.numeric[col].to_numpy(dtype=np.float64)
        present = x[~np.isnan(x)]
        parts.extend([float(present.size), float(present.sum()), float((present**2).sum())])
    for col, vocab in layout.categorical:
        if col in table.categorical.columns:
            values = pd.Series(table.categorical[col].to_numpy(dtype=object))
        else:
            values = pd.Series(_numbers_as_categories(table.numeric[col]))
        counts = values.value_counts()
        parts.extend(float(counts.get(v, 0)) for v in vocab)
        parts.append(float(values.isna().sum()))
    return np.asarray(parts, dtype=np.float64)


def combine_stats(
    layout: FeatureLayout, total: np.ndarray, *, max_categories: int = MAX_CATEGORIES
) -> Preprocessor:
    """Step 2 at the coordinator: summed stats vector -> shared :class:`Preprocessor`.

    Constant or all-missing numeric columns get std 1 (they become all-zero inputs). Each
    categorical column keeps its ``max_categories`` most frequent values.
    """
    total = np.asarray(total, dtype=np.float64)
    if total.shape != (layout.stats_length,):
        raise SchemaError(
            f"stats vector has length {total.shape}, layout expects {layout.stats_length}."
        )
    n_rows, pos = int(round(total[0])), 1
    means, stds = [], []
    for _ in layout.numeric:
        count, s, ss = total[pos : pos + 3]
        pos += 3
        mean = s / count if count > 0 else 0.0
        var = max(ss / count - mean**2, 0.0) if count > 0 else 0.0
        std = float(np.sqrt(var))
        means.append(float(mean))
        stds.append(std if std > 1e-12 * max(1.0, abs(mean)) else 1.0)
    categorical = []
    for col, vocab in layout.categorical:
        counts = total[pos : pos + len(vocab)]
        pos += len(vocab) + 1
        order = sorted(range(len(vocab)), key=lambda i: (-counts[i], vocab[i]))
        keep = [vocab[i] for i in order[:max_categories] if counts[i] > 0]
        categorical.append((col, tuple(keep)))
    return Preprocessor(layout.numeric, tuple(means), tuple(stds), tuple(categorical), n_rows)


def pooled_preprocessor(tables: list[CreditTable]) -> Preprocessor:
    """The same steps run over several tables in one place (baselines and tests)."""
    layout = merge_schemas([local_schema(t) for t in tables])
    total = np.sum([local_stats_vector(t, layout) for t in tables], axis=0)
    return combine_stats(layout, total)
