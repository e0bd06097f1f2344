"""Reason codes for a logistic-regression scorecard: which features cost an entity most points.

Each original column's contribution is measured against a *typical applicant*: the federated
mean for a numeric column (``z = 0``) and the most frequent training category for a
categorical one. For row ``i`` and column ``g``::

    numeric:      lost_ig = points_per_unit_g * z_ig
    categorical:  lost_ig = points[category_i] - points[reference_g]   (unseen/missing: 0 points)

The reasons are the ``k`` most negative contributions, as readable phrases such as
``"duration in month above average"`` or ``"purpose: education"``; columns that raised the
score are never reasons, so a row may have fewer than ``k``. All of it is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.scorecard.linear import LinearScorecard

MIN_POINTS_LOST = 1e-6
"""Contributions closer to zero than this are not reasons."""


@dataclass(frozen=True)
class ReasonCodes:
    """Top reasons per row, worst first.

    Attributes
    ----------
    text : object array (n, k)
        Readable reason, ``""`` where the row has fewer than ``k`` reasons.
    feature : object array (n, k)
        Original column name of each reason (``""`` likewise).
    points_lost : float array (n, k)
        Points the column cost against the typical applicant (positive; 0 where none).
    """

    text: np.ndarray
    feature: np.ndarray
    points_lost: np.ndarray


def readable(name: str) -> str:
    """Column name as words: ``duration_in_month`` -> ``duration in month``."""
    return name.replace("_", " ").strip()


def _numeric_labels(card: LinearScorecard) -> list[str]:
    """A numeric column lowers the score on one side of its mean only; name that side."""
    return [f"{readable(n.feature)} {'above' if n.points_per_unit < 0 else 'below'} average"
            for n in card.numeric]


def contributions(card: LinearScorecard, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-column points against the typical applicant, with a label index per cell.

    Returns
    -------
    (lost, label_index, labels) : (n, G) float, (n, G) int, list of str
        ``labels[label_index[i, g]]`` describes row ``i``'s value of column ``g``.
    """
    x = np.asarray(x, dtype=np.float64)
    ppf = card.points_per_feature
    k = len(card.numeric)
    n = x.shape[0]
    labels = _numeric_labels(card)
    lost = [x[:, :k] * ppf[:k]]
    index = [np.broadcast_to(np.arange(k), (n, k))]
    pos = k
    for col in card.categorical:
        width = len(col.bins)
        block = x[:, pos : pos + width]
        ref = ppf[pos] if width else 0.0
        lost.append((block @ ppf[pos : pos + width] - ref)[:, None])
        seen = block.sum(axis=1) > 0
        which = np.where(seen, block.argmax(axis=1) if width else 0, width)
        index.append((len(labels) + which)[:, None])
        labels.extend(f"{readable(col.feature)}: {b.category}" for b in col.bins)
        labels.append(f"{readable(col.feature)}: missing or unseen")
        pos += width
    return np.hstack(lost), np.hstack(index), labels


def reason_codes(card: LinearScorecard, x: np.ndarray, *, k: int = 3) -> ReasonCodes:
    """The ``k`` columns that lowered each row's score most.

    Parameters
    ----------
    card : LinearScorecard
    x : (n, F) array
        Design matrix in the scorecard's layout (``Preprocessor.transform``).
    k : int
        Reasons per row (at least 1).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k}).")
    lost, label_index, labels = contributions(card, x)
    columns = np.array([n.feature for n in card.numeric] + [c.feature for c in card.categorical],
                       dtype=object)
    order = np.argsort(lost, axis=1, kind="stable")[:, :k]
    worst = np.take_along_axis(lost, order, axis=1)
    is_reason = worst < -MIN_POINTS_LOST
    text = np.asarray(labels, dtype=object)[np.take_along_axis(label_index, order, axis=1)]
    pad = ((0, 0), (0, k - order.shape[1]))  # fewer columns than k: empty reasons
    return ReasonCodes(
        text=np.pad(np.where(is_reason, text, ""), pad, constant_values=""),
        feature=np.pad(np.where(is_reason, columns[order], ""), pad, constant_values=""),
        points_lost=np.pad(np.where(is_reason, -worst, 0.0), pad),
    )
