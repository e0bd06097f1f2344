"""Each party's own rows, prepared for the served model part (built at load and at each reload).

The center computes its partial logit and published reasons for every enterprise of its table
once per promoted version, so a query is a dictionary look-up and a few array indexings. The
bank keeps its design matrix so a query keyed by USCC needs no parsing. Both run on the owner's node only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedcredit.service.model_parts import PublishedReasons, part_reasons
from fedcredit.service.partial_wire import CenterAnswer
from fedcredit.service.registry import ServedModel
from federation.data.table import load_credit_csv
from federation.run.tree_part import TreeCenterPart


def row_positions(index: dict[str, int], codes: list[str]) -> np.ndarray:
    """Row position of each USCC in ``index`` (-1: not in the table)."""
    get = index.get
    return np.fromiter((get(c, -1) for c in codes), dtype=np.int64, count=len(codes))


@dataclass(frozen=True)
class PartyTable:
    """A party's rows in its model part's layout.

    Attributes
    ----------
    index : dict
        USCC -> row position.
    x : (n, F) float array
        Design matrix of the part's columns.
    partial_logit : (n,) float array
        ``x @ w`` of the part (plus the intercept for the bank's or a whole model).
    reasons : PublishedReasons
        The part's published reasons per row (label indices into ``reasons.labels``, points).
    """

    index: dict[str, int]
    x: np.ndarray
    partial_logit: np.ndarray
    reasons: PublishedReasons

    def positions(self, codes: list[str]) -> np.ndarray:
        """Row position of each USCC (-1: not in the table)."""
        return row_positions(self.index, codes)

    def answer(self, codes: list[str], model_version: str, model_id: str) -> CenterAnswer:
        """The center's answer for ``codes``: array look-ups, no per-row encoding."""
        at = self.positions(codes)
        found = at >= 0
        row = np.where(found, at, 0)
        k = self.reasons.label.shape[1]
        return CenterAnswer(model_version, model_id, self.reasons.labels, found,
                            np.where(found, self.partial_logit[row], 0.0),
                            np.where(found[:, None], self.reasons.label[row], -1).reshape(-1, k),
                            np.where(found[:, None], self.reasons.points_lost[row],
                                     0.0).reshape(-1, k))


@dataclass(frozen=True)
class TreeTable:
    """A party's rows for its SecureBoost part: the bank's bin codes (to route its trees), or
    the center's branch bits at each of its split ids for every row (computed once per
    version, so a query is a look-up)."""

    index: dict[str, int]
    codes: np.ndarray
    branches: np.ndarray

    def positions(self, codes: list[str]) -> np.ndarray:
        """Row position of each USCC (-1: not in the table)."""
        return row_positions(self.index, codes)

    def answer(self, codes: list[str], model_version: str, model_id: str) -> CenterAnswer:
        """The center's answer: found, and the branch bits of each found enterprise."""
        at = self.positions(codes)
        found = at >= 0
        n = len(codes)
        bits = np.where(found[None, :], self.branches[:, np.where(found, at, 0)], False)
        return CenterAnswer(model_version, model_id, (), found, np.zeros(n),
                            np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0)), bits)


def load_tree_table(model: ServedModel, data: Path, *, id_col: str,
                    target: str | None) -> TreeTable:
    """Read the party's CSV and bin it for its SecureBoost part (center: its branch bits)."""
    table = load_credit_csv(data, target=target, id_col=id_col or None)
    ids = table.ids if table.ids is not None else np.array([], dtype=object)
    index = {str(u): i for i, u in enumerate(ids)}
    trees = model.trees
    assert trees is not None
    codes = trees.codes(table)
    if isinstance(trees, TreeCenterPart):
        return TreeTable(index, codes[:0], trees.branches(codes))
    return TreeTable(index, codes, np.zeros((0, len(index)), dtype=bool))


def load_party_table(model: ServedModel, data: Path, *, id_col: str, target: str | None) -> PartyTable:
    """Read the party's CSV and score its part for every row.

    Raises
    ------
    DataError, SchemaError
        The file is unreadable or lacks a column of the part (named by the loader).
    """
    table = load_credit_csv(data, target=target, id_col=id_col or None)
    x = model.card.preprocessor().transform(table).astype(np.float64)
    ids = table.ids if table.ids is not None else np.array([], dtype=object)
    logit = model.card.log_odds(x)
    reasons = part_reasons(model.card, x)
    return PartyTable({str(u): i for i, u in enumerate(ids)}, x, logit, reasons)
