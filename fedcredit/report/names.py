"""One name per number: the labels the report gives each model and test set.

They are the labels the CLI prints for the same numbers (``fedcredit simulate``'s table in
``fedcredit/cli/simulate.py``, ``fedcredit vertical``'s in ``fedcredit/cli/vertical.py``; a test
prints both tables and checks each label of this module beside the same number). In
particular "local-only bank K" is bank K's own model on **all** banks' test rows, as in the
CLI; the same model on bank K's own test rows is "own-test AUC" and never called local-only
alone.
"""

from __future__ import annotations

from federation.run.results import HorizontalResults, RunResults, VerticalResults

CENTRALISED_POOLED = "centralised (pooled)"
CENTRALISED_JOINED = "centralised (joined plaintext)"
BANK_ONLY = "bank only"
LOCAL_ONLY_MEAN = "local-only mean"
LR_REFERENCE = "logistic regression, pooled (reference)"
SECUREBOOST = "secureboost"
BANKS_GAINING = "banks gaining from federation"
"""Beyond a dozen banks: banks whose own test rows the federated model scores better."""

HORIZONTAL_TEST_ROWS = "the union of the banks' test rows"
VERTICAL_TEST_ROWS = "the held-out part of the intersection"


def federated_label(results: RunResults) -> str:
    """``federated (plain)`` / ``federated (paillier)`` / ``federated (vertical LR)``, ..."""
    if isinstance(results, VerticalResults):
        kind = "SecureBoost" if results.config.get("model") == SECUREBOOST else "vertical LR"
        return f"federated ({kind})"
    mode = aggregation_mode(results)
    return "federated" if mode is None else f"federated ({mode})"


def aggregation_mode(results: HorizontalResults) -> str | None:
    """The horizontal run's aggregation (``plain``/``paillier``), from the run or its config."""
    mode = results.aggregation or (results.config or {}).get("aggregation")
    return None if mode in (None, "") else str(mode)


def local_only_bank_label(bank: int, train_rows: int) -> str:
    """Bank ``bank``'s own model, AUC/KS on all banks' test rows (the CLI's row label)."""
    return f"local-only bank {bank} ({train_rows} rows)"


def local_only_spread_label(label: str, banks: int) -> str:
    """``local-only min of 20 banks`` (``label``: min, median or max; the CLI's row label)."""
    return f"local-only {label} of {banks} banks"


def test_rows_phrase(results: RunResults) -> str:
    """Which rows the headline AUC/KS are measured on."""
    return VERTICAL_TEST_ROWS if isinstance(results, VerticalResults) else HORIZONTAL_TEST_ROWS
