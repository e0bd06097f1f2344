"""Many banks in the printed table (issue 14, part 3): beyond a dozen banks the local-only
models are summarised (min / median / max, banks gaining from federation); per-bank detail
stays in results.json."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from fedcredit.cli.simulate import console, print_results
from fedcredit.simulation.local_summary import SUMMARY_ABOVE, Spread, summarise_local
from federation.run.results import BankBaseline, HorizontalResults, LocalOnly

from .test_report_sections import horizontal_results


def _bank(k: int, *, own: float | None, fed: float | None, auc: float | None = None) -> BankBaseline:
    return BankBaseline(bank=k, train_rows=100 + k, test_rows=40, bad_rate=0.2,
                        auc=0.60 + k / 100 if auc is None else auc, ks=0.20 + k / 200,
                        own_test_auc=own, federated_own_test_auc=fed,
                        centralized_own_test_auc=0.8)


def many_banks(n: int) -> LocalOnly:
    """``n`` banks: bank k's own AUC 0.60 + k/100; even banks gain from federating, odd ones
    lose; bank 1's own test set has one class (no AUC), bank 2 has no union AUC."""
    banks = [_bank(k, own=0.7, fed=0.75 if k % 2 == 0 else 0.65) for k in range(n)]
    banks[1] = _bank(1, own=math.nan, fed=0.75)
    banks[2] = _bank(2, own=0.7, fed=0.75, auc=math.nan)
    return LocalOnly(mean_auc=0.65, per_bank=tuple(banks))


def test_the_summary_spreads_defined_values_and_counts_banks_that_gain() -> None:
    summary = summarise_local(many_banks(20))
    assert summary.banks == 20
    union_aucs = sorted(0.60 + k / 100 for k in range(20) if k != 2)
    assert summary.auc == Spread(union_aucs[0], union_aucs[len(union_aucs) // 2], union_aucs[-1])
    assert summary.ks is not None and summary.ks.low == 0.20 and summary.ks.high == 0.20 + 19 / 200
    assert summary.compared == 19  # bank 1 has no own-test AUC
    assert summary.gaining == 10  # the even banks, 0..18
    assert summary.gaining_share == 10 / 19
    empty = summarise_local(LocalOnly(mean_auc=None, per_bank=()))
    assert empty.auc is None and empty.gaining_share is None


def _printed(results: HorizontalResults, tmp_path: Path) -> str:
    with console.capture() as captured:
        print_results(results, tmp_path / "results.json")
    return captured.get()


def test_the_table_lists_a_few_banks_and_summarises_many(tmp_path: Path) -> None:
    few = horizontal_results()
    text = _printed(few, tmp_path)
    assert all(f"local-only bank {k} " in text for k in range(3))
    assert "banks gaining from federation" not in text
    n = SUMMARY_ABOVE + 8
    many = replace(few, banks=n, local_only=many_banks(n))
    text = _printed(many, tmp_path)
    assert "local-only bank" not in text
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 2}
    assert f"{0.60:.4f}" in lines[f"local-only min of {n} banks"]
    assert f"{0.60 + (n - 1) / 100:.4f}" in lines[f"local-only max of {n} banks"]
    assert f"local-only median of {n} banks" in lines
    gain = n // 2
    assert f"banks gaining from federation: {gain} of {n - 1} ({gain / (n - 1):.0%})" in text
