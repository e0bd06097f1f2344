"""A promoted LR scorecard split between the bank and the credit center, and its row scoring.

Step (vertical LR inference): the model is ``log_odds = b + w_B . x_B + w_C . x_C``, with the
bank's columns ``x_B`` and the center's ``x_C``. The bank's part holds ``b`` and ``w_B`` (and the
bank's standardisation), the center's part holds ``w_C`` only. At a query the center computes its
partial logit ``w_C . x_C`` from its own table and publishes the reason codes of its own columns
(points lost against the typical applicant, :mod:`federation.scorecard.reason_codes`); the bank
adds its part, then scales to points and grades exactly as the whole scorecard would::

    points = offset - factor * (b + w_B . x_B + w_C . x_C)

so a split model scores every enterprise as the unsplit scorecard does (tested).

Security assumption: the center's part never leaves the center; each part's file holds only its
own weights. The bank learns ``w_C . x_C`` of each enterprise it queries: a bank that queries many
enterprises whose center features it knows could solve for ``w_C``; the rate limit and the
center's query log (which bank asked, about whom, why) bound and record that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedcredit.service.errors import Refusal
from federation.data.table import MISSING_TOKENS, NUMERIC_MISSING_TOKENS
from federation.scorecard.linear import CategoricalPoints, LinearScorecard, NumericPoints
from federation.scorecard.reason_codes import MIN_POINTS_LOST, contributions

PARTS = ("whole", "bank", "center")
DEFAULT_REASONS = 3


def split_scorecard(card: LinearScorecard, center_columns: Sequence[str]) -> tuple[
        LinearScorecard, LinearScorecard]:
    """The bank's part (intercept and the other columns) and the center's (its columns only).

    Raises
    ------
    ValueError
        A named center column is not one of the scorecard's, or no column is left to a party.
    """
    wanted = set(center_columns)
    known = {n.feature for n in card.numeric} | {c.feature for c in card.categorical}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"center column(s) {', '.join(unknown)} are not in the model (its "
                         f"columns: {', '.join(sorted(known))})")
    if not wanted or wanted == known:
        raise ValueError("each party must hold at least one column of a split model")

    def part(keep: bool, intercept: float) -> LinearScorecard:
        numeric = tuple(n for n in card.numeric if (n.feature in wanted) == keep)
        categorical = tuple(c for c in card.categorical if (c.feature in wanted) == keep)
        return LinearScorecard(card.scale, card.grades, intercept, numeric, categorical,
                               card.clip_z, card.n_rows, card.target, card.id_column)

    return part(False, card.intercept), part(True, 0.0)


def columns_of(card: LinearScorecard) -> tuple[str, ...]:
    """The original columns a part scores (numeric first, then categorical)."""
    return tuple(n.feature for n in card.numeric) + tuple(c.feature for c in card.categorical)


_NUMERIC_MISSING = frozenset(t.lower() for t in NUMERIC_MISSING_TOKENS)
_CATEGORICAL_MISSING = frozenset(t.lower() for t in MISSING_TOKENS)


def _z(spec: NumericPoints, value: object, clip: float, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NUMERIC_MISSING):
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Refusal(422, "invalid_feature", f"field '{where}' must be a number or null.",
                      field=where)
    try:
        number = float(value)
    except ValueError:
        raise Refusal(422, "invalid_feature", f"field '{where}' must be a number or null.",
                      field=where) from None
    if not math.isfinite(number):
        raise Refusal(422, "invalid_feature", f"field '{where}' must be a finite number.",
                      field=where)
    return max(-clip, min(clip, (number - spec.mean) / spec.std))


def _category(spec: CategoricalPoints, value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Refusal(422, "invalid_feature", f"field '{where}' must be text, a number or null.",
                      field=where)
    text = value.strip() if isinstance(value, str) else format(value, "g")
    if text.lower() in _CATEGORICAL_MISSING:
        return None
    return next((i for i, b in enumerate(spec.bins) if b.category == text), None)


def design_rows(card: LinearScorecard, rows: Sequence[Mapping[str, object]],
                where: Sequence[str]) -> np.ndarray:
    """Design matrix of feature mappings (one per row) in the part's layout.

    Every column of the part must be present (null or a missing-value word means missing);
    an unseen category scores as missing, as in the scorecard export.

    Raises
    ------
    Refusal
        422 naming the field (``where[i]`` + ``.column``) that is absent or not a value.
    """
    width = len(card.feature_names)
    x = np.zeros((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, spec in enumerate(card.numeric):
            if spec.feature not in row:
                raise _absent(f"{where[i]}.{spec.feature}")
            x[i, j] = _z(spec, row[spec.feature], card.clip_z, f"{where[i]}.{spec.feature}")
        pos = len(card.numeric)
        for col in card.categorical:
            if col.feature not in row:
                raise _absent(f"{where[i]}.{col.feature}")
            hit = _category(col, row[col.feature], f"{where[i]}.{col.feature}")
            if hit is not None:
                x[i, pos + hit] = 1.0
            pos += len(col.bins)
    return x


def _absent(field: str) -> Refusal:
    return Refusal(422, "missing_feature", f"field '{field}' is missing; send every column the "
                   "model scores (null for a missing value).", field=field)


@dataclass(frozen=True, slots=True)
class PublishedReasons:
    """Reasons a part publishes per row, worst first: ``label`` (n, k) indexes ``labels``
    (-1 where a row has fewer than k reasons), ``points_lost`` (n, k) is 0 there."""

    labels: tuple[str, ...]
    label: np.ndarray
    points_lost: np.ndarray

    @property
    def text(self) -> np.ndarray:
        """The reasons as text ("" where none)."""
        return np.asarray((*self.labels, ""), dtype=object)[self.label]


def part_reasons(card: LinearScorecard, x: np.ndarray, k: int = DEFAULT_REASONS) -> PublishedReasons:
    """The ``k`` columns of this part that cost each row most points (none that raised it)."""
    lost, label_index, labels = contributions(card, x)
    n = len(x)
    order = np.argsort(lost, axis=1, kind="stable")[:, :k]
    worst = np.take_along_axis(lost, order, axis=1)
    is_reason = worst < -MIN_POINTS_LOST
    label = np.where(is_reason, np.take_along_axis(label_index, order, axis=1), -1)
    pad = ((0, 0), (0, k - order.shape[1]))  # fewer columns than k
    return PublishedReasons(tuple(labels), np.pad(label, pad, constant_values=-1).reshape(n, k),
                            np.pad(np.where(is_reason, -worst, 0.0), pad).reshape(n, k))
