"""Each party's own rows, prepared for the served model part (built at load and at each reload).

The center computes its partial logit and published reasons for every enterprise of its table
once per promoted version, so a query is a dictionary look-up. The bank keeps its design matrix
so a query keyed by USCC needs no parsing. Both run on the owner's node only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedcredit.service.model_parts import PublishedReasons, part_reasons
from fedcredit.service.registry import ServedModel
from federation.data.table import load_credit_csv


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
    logit_json, label_json, points_json : list of str
        The same per row, already JSON-encoded: the center's answer to a batch of 10,000 is
        joined from these, not encoded again per request.
    """

    index: dict[str, int]
    x: np.ndarray
    partial_logit: np.ndarray
    reasons: PublishedReasons
    logit_json: list[str]
    label_json: list[str]
    points_json: list[str]


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
    compact = (",", ":")
    return PartyTable({str(u): i for i, u in enumerate(ids)}, x, logit, reasons,
                      [json.dumps(float(v)) for v in logit],
                      [json.dumps(row.tolist(), separators=compact) for row in reasons.label],
                      [json.dumps(np.round(row, 4).tolist(), separators=compact)
                       for row in reasons.points_lost])
