"""The report beyond a dozen banks (issue 14, part 3) and under differential privacy (issue 16,
part 3), on results.json fixtures (no simulation)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from fedcredit.cli.simulate import console as simulate_console
from fedcredit.cli.simulate import print_results
from fedcredit.report.html import build_report
from fedcredit.simulation.local_summary import SUMMARY_ABOVE, summarise_local
from federation.run.results import BankPrivacy

from .test_local_summary import many_banks
from .test_report_sections import (
    horizontal_results,
    keyed_numbers_match,
    no_drawing,
    page_numbers,
    parse,
    summary_rows,
)

__all__ = ["no_drawing"]  # the fixture, used by name below


def test_many_banks_get_the_clis_spread_rows_and_no_per_bank_detail(
        tmp_path: Path, no_drawing: None) -> None:
    n = SUMMARY_ABOVE + 8
    results = replace(horizontal_results(), banks=n, local_only=many_banks(n))
    html = build_report(results)
    rows = summary_rows(html)
    labels = [r[0] for r in rows]
    assert not any(label.startswith("local-only bank") for label in labels)
    summary = summarise_local(many_banks(n))
    assert summary.auc is not None
    spread = {r[0]: r[1] for r in rows}
    assert spread[f"local-only min of {n} banks"] == f"{summary.auc.low:.4f}"
    assert spread[f"local-only median of {n} banks"] == f"{summary.auc.middle:.4f}"
    assert spread[f"local-only max of {n} banks"] == f"{summary.auc.high:.4f}"
    _, derived = page_numbers(html)
    assert derived["banks-gaining"] == [str(summary.gaining)]
    assert derived["banks-compared"] == [str(summary.compared)]
    assert "fig-banks" not in parse(html).figures and '<table id="banks">' not in html
    assert "local_only.per_bank" in html
    with simulate_console.capture() as captured:  # the CLI prints the same rows
        print_results(results, tmp_path / "results.json")
    printed = captured.get()
    for label, auc, *_ in rows[2:5]:
        assert any(label in line and auc in line for line in printed.splitlines()), label
    few = build_report(horizontal_results())
    assert "fig-banks" in parse(few).figures and '<table id="banks">' in few


def _privacy(banks: int) -> tuple[BankPrivacy, ...]:
    return tuple(BankPrivacy(bank=k, epsilon=1.5 + k / 10, delta=1e-5, noise_multiplier=1.1,
                             clip=1.0, sampling_rate=0.05, steps=400, accountant="rdp",
                             release_noise_multiplier=3.0, histogram_noise_multiplier=2.5)
                 for k in range(banks))


def test_a_dp_run_shows_each_banks_guarantee_and_the_auc_cost(no_drawing: None) -> None:
    results = replace(horizontal_results(), privacy=_privacy(3))
    html = build_report(results)
    assert keyed_numbers_match(html, json.loads(results.to_json())) > 40
    keyed, derived = page_numbers(html)
    assert [keyed[("privacy", k, "epsilon")] for k in range(3)] == ["1.5", "1.6", "1.7"]
    assert keyed[("privacy", 2, "delta")] == "1e-05"
    assert keyed[("privacy", 0, "histogram_noise_multiplier")] == "2.5"
    assert derived["dp-worst-epsilon"] == ["1.7"]
    assert results.centralized is not None and results.federated is not None
    cost = (results.centralized.auc or 0) - (results.federated.auc or 0)
    assert derived["dp-auc-cost"] == [f"{cost:+.4f}"]
    assert "non-private reference" in html
    assert 'id="privacy"' not in build_report(horizontal_results())  # no DP, no section
    deployed = build_report(replace(results, centralized=None))
    assert "dp-auc-cost" not in deployed and "AUC cost not shown" in deployed


def test_many_dp_banks_show_the_extremes_of_epsilon(no_drawing: None) -> None:
    n = SUMMARY_ABOVE + 3
    results = replace(horizontal_results(), privacy=_privacy(n))
    keyed, _ = page_numbers(build_report(results))
    shown = sorted(k[1] for k in keyed if k[0] == "privacy" and k[2] == "epsilon")
    assert shown == [0, n - 1]
