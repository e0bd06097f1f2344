"""The local-only models of many banks in a few numbers (the printed table beyond a dozen banks).

With a hundred banks one line per bank buries the comparison; the table then shows the spread
of the banks' own models (min / median / max of their AUC and KS on the union of the test sets)
and how many banks gain from federating: the federated model scores the bank's own test rows
better than the bank's own model does. Per-bank detail stays in ``results.json``
(``local_only.per_bank``); this module only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

from federation.run.results import LocalOnly

SUMMARY_ABOVE = 12
"""Banks beyond which the table summarises the local-only models instead of listing them."""


@dataclass(frozen=True, slots=True)
class Spread:
    """Min, median and max of one metric over the banks where it is defined."""

    low: float
    middle: float
    high: float


@dataclass(frozen=True, slots=True)
class LocalSummary:
    """The banks' own models in summary.

    ``auc`` and ``ks``: spread over banks of each bank's own model on the union of the test
    sets (None when no bank has a defined value); ``gaining``: banks whose own test rows the
    federated model scores with a higher AUC than their own model; ``compared``: banks where
    both AUCs are defined (a test set with one class has none).
    """

    banks: int
    auc: Spread | None
    ks: Spread | None
    gaining: int
    compared: int

    @property
    def gaining_share(self) -> float | None:
        """``gaining / compared`` (None when no bank could be compared)."""
        return self.gaining / self.compared if self.compared else None


def _defined(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def _spread(values: list[float | None]) -> Spread | None:
    kept = _defined(values)
    return Spread(min(kept), float(median(kept)), max(kept)) if kept else None


def summarise_local(local: LocalOnly) -> LocalSummary:
    """Summarise ``results.json``'s ``local_only`` (see :class:`LocalSummary`)."""
    pairs = [(b.own_test_auc, b.federated_own_test_auc) for b in local.per_bank]
    compared = [(own, fed) for own, fed in pairs if _defined([own]) and _defined([fed])]
    return LocalSummary(
        banks=len(local.per_bank),
        auc=_spread([b.auc for b in local.per_bank]),
        ks=_spread([b.ks for b in local.per_bank]),
        gaining=sum(1 for own, fed in compared if fed is not None and own is not None and fed > own),
        compared=len(compared),
    )
