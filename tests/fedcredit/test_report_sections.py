"""`fedcredit report` on small results.json fixtures of every run kind (no simulation).

The fixtures' score histograms come from labels drawn from their own PDs, so the PDs are
calibrated by construction and the report's calibration bands must lie near the diagonal.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedcredit.cli.simulate import console as simulate_console
from fedcredit.cli.simulate import print_results
from fedcredit.cli.vertical import console as vertical_console
from fedcredit.cli.vertical import print_vertical
from fedcredit.report import figures as figs
from fedcredit.report import html as report_html
from fedcredit.report.html import build_report
from fedcredit.report.statistics import grade_table_from_scores, histogram_calibration
from federation.data.embedded import PACKAGE, find_embedded
from federation.ml.calibration import PlattMap, bin_centres
from federation.ml.metrics import LOGIT_RANGE, auc_ks_from_histograms, score_histograms
from federation.run.results import (
    AuditRef,
    BankBaseline,
    Deployment,
    HorizontalResults,
    LocalOnly,
    Metrics,
    PsiSummary,
    RoundEntry,
    ScoreHistograms,
    VerticalResults,
)
from federation.scorecard.scale import RiskGrades, ScorecardScale
from server.calibration import calibration_section

from .test_report import invoke, parse

PNG_STUB = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def no_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures as a stub PNG (drawing is what takes time; one test below draws for real)."""
    for name in dir(figs):
        if name.endswith("_figure"):
            monkeypatch.setattr(figs, name, lambda *a, **k: PNG_STUB)


def sample(n: int, seed: int, *, shift: float = -1.4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pd = 1 / (1 + np.exp(-rng.normal(shift, 1.3, n)))
    return (rng.random(n) < pd).astype(int), pd


def histograms(y: np.ndarray, pd: np.ndarray) -> tuple[ScoreHistograms, Metrics]:
    bad, good = score_histograms(y, pd)
    auc, ks = auc_ks_from_histograms(bad, good)
    return (ScoreHistograms.from_counts(bad, good, logit_range=LOGIT_RANGE),
            Metrics(auc=auc, ks=ks))


def horizontal_results() -> HorizontalResults:
    hist, fed = histograms(*sample(3000, 1))
    banks = tuple(BankBaseline(bank=k, train_rows=700 + k, test_rows=1000, bad_rate=0.2,
                               auc=0.70 + k / 100, ks=0.30 + k / 100, own_test_auc=0.75 + k / 100,
                               federated_own_test_auc=0.77, centralized_own_test_auc=0.78)
                  for k in range(3))
    return HorizontalResults(
        dataset="german", target="bad", rows=10_000, banks=3, rounds=3, model="lr",
        aggregation="paillier", partition="iid", strategy="fedavg", seed=0, federated=fed,
        history=tuple(RoundEntry(round=i, auc=fed.auc, ks=fed.ks, seconds=1.5, banks=3)
                      for i in (1, 2, 3)),
        score_histograms=hist, centralized=Metrics(auc=0.79, ks=0.45),
        local_only=LocalOnly(mean_auc=0.71, per_bank=banks), audit=AuditRef(head="ab" * 32),
        federated_seconds=10.0, wall_seconds=12.0, config={"aggregation": "paillier"})


def vertical_results() -> VerticalResults:
    y, pd = sample(900, 2)
    hist, fed = histograms(y, pd)
    row_level = Metrics(auc=(fed.auc or 0) + 0.002, ks=(fed.ks or 0) + 0.004)  # as a row-level AUC
    return VerticalResults(
        run_id="r1", psi=PsiSummary(bank_rows=4000, center_rows=3500, intersection=3000,
                                    seconds=2.0),
        federated=row_level, score_histograms=hist, iv={"utilisation": 0.4, "tax_grade": 1.1},
        epochs=2, epoch_seconds=(3.0, 3.5), train_rows=2100, test_rows=900,
        bank_features=("utilisation",), center_features=("tax_grade",), bytes_relayed=10_000,
        key_bits=2048, config={"model": "lr"}, centralized=Metrics(auc=0.8, ks=0.5),
        bank_only=Metrics(auc=0.7, ks=0.35), bank_columns=("utilisation",))


def summary_rows(html: str) -> list[list[str]]:
    body = html.split('<table id="summary">', 1)[1].split("</table>", 1)[0]
    rows = []
    for tr in body.split("<tr>")[2:]:
        cells = [c.split("</td>", 1)[0] for c in tr.split("<td>")[1:]]
        rows.append([_text(c) for c in cells])
    return rows


def _text(cell: str) -> str:
    page = parse(f"<p>{cell}</p>")
    return "".join(t for _, t in page.numbers) or cell.replace("&#x27;", "'")


def write_run(tmp_path: Path, results: Any) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(results.to_json(), encoding="utf-8")
    return run


def keyed_numbers_match(html: str, document: Any) -> int:
    page = parse(html)
    keyed = [(json.loads(a["data-key"]), a["data-format"], t) for a, t in page.numbers
             if "data-key" in a]
    for path, spec, text in keyed:
        assert text == format(report_html.value_at(document, path), spec), path
    return len(keyed)


def test_horizontal_report_names_grades_calibration_and_identity(tmp_path: Path) -> None:
    results = horizontal_results()
    run = write_run(tmp_path, results)
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text(encoding="utf-8")
    assert keyed_numbers_match(html, json.loads(results.to_json())) > 40
    labels = [row[0] for row in summary_rows(html)]
    assert labels == ["federated (paillier)", "centralised (pooled)",
                      "local-only bank 0 (700 rows)", "local-only bank 1 (701 rows)",
                      "local-only bank 2 (702 rows)", "local-only mean"]
    for bad in ("federated (?)", "Aggregation mode", ">n/a<", "the banks' test rows."):
        assert bad not in html
    page = parse(html)
    derived: dict[str, list[str]] = {}
    for a, text in page.numbers:
        derived.setdefault(a.get("data-derived", ""), []).append(text)
    assert derived["grades-monotone"] == ["yes"] and int(derived["grades-populated"][0]) >= 4
    assert derived["test-rows"] == ["3,000"]
    assert "not-calibrated" in html  # this fixture predates calibration
    hist = results.score_histograms
    assert hist is not None
    bands, brier = histogram_calibration(hist.bad, hist.good, logit_range=LOGIT_RANGE)
    assert derived["hcal-mean-pd"] == [f"{b.mean_pd:.2%}" for b in bands]
    assert derived["hcal-observed"] == [f"{b.observed_rate:.2%}" for b in bands]
    assert derived["hcal-brier"] == [f"{brier:.4f}"]
    gap = sum(b.rows * abs(b.observed_rate - b.mean_pd) for b in bands) / 3000
    assert gap < 0.03 and max(abs(b.observed_rate - b.mean_pd) for b in bands) < 0.08
    assert "fig-calibration" in page.figures and "fig-gains" in page.figures
    embedded = find_embedded("german")
    assert embedded is not None
    digest = hashlib.sha256(files(PACKAGE).joinpath(embedded.file).read_bytes()).hexdigest()
    assert digest in html and results.audit is not None and results.audit.head in html


def test_vertical_report_has_its_own_facts_and_the_tables_ks(
        monkeypatch: pytest.MonkeyPatch, no_drawing: None) -> None:
    results = vertical_results()
    drawn: list[float | None] = []

    def spy(*args: Any, ks: float | None = None, **kwargs: Any) -> bytes:
        drawn.append(ks)
        return PNG_STUB

    monkeypatch.setattr(figs, "ks_figure", spy)
    html = build_report(results)
    assert drawn == [results.federated.ks]  # the KS figure shows the Summary's KS
    assert keyed_numbers_match(html, json.loads(results.to_json())) >= 20
    assert [r[0] for r in summary_rows(html)] == ["federated (vertical LR)",
                                                  "centralised (joined plaintext)", "bank only"]
    assert "the held-out part of the intersection" in html and "banks' test rows" not in html
    assert "<h2>Epochs</h2>" in html and "<b>vertical</b>" in html
    assert "Aggregation mode" not in html and "federated (?)" not in html
    page = parse(html)
    keyed = {tuple(json.loads(a["data-key"])): t for a, t in page.numbers if "data-key" in a}
    assert keyed[("psi", "intersection")] == "3,000" and keyed[("test_rows",)] == "900"
    assert keyed[("epoch_seconds", 1)] == "3.50"
    assert {"fig-roc", "fig-ks", "fig-iv", "fig-calibration"} <= set(page.figures)
    assert "keep their own weights" in html


def test_a_deployed_coordinators_results_say_what_is_not_recorded(no_drawing: None) -> None:
    deployment = Deployment(engine="flower deployment runtime", tls=True, node_auth=True,
                            superlink="127.0.0.1:9092", run_id="424242", status="finished",
                            nodes=(), coordinator_results="c", logs="l", processes="p")
    results = replace(horizontal_results(), rows=None, target=None, centralized=None,
                      local_only=None, audit=None, deployment=deployment)
    html = build_report(results)
    assert [r[0] for r in summary_rows(html)] == ["federated (paillier)"]
    assert "not recorded (a deployed coordinator holds no data)" in html
    assert "No baselines in results.json" in html and "<h2>Banks</h2>" not in html
    keyed, _ = page_numbers(html)
    assert keyed[("deployment", "run_id")] == "424242"
    assert keyed[("deployment", "status")] == "finished" and keyed[("deployment", "tls")] == "True"
    vertical = build_report(replace(vertical_results(), deployment=deployment))
    assert page_numbers(vertical)[0][("run_id",)] == "r1" and "flower deployment" in vertical


def test_a_small_test_set_gets_a_warning(no_drawing: None) -> None:
    hist, fed = histograms(*sample(150, 3))
    small = replace(horizontal_results(), score_histograms=hist, federated=fed)
    assert "small-sample" in build_report(small)
    assert "small-sample" not in build_report(horizontal_results())


def _cli_lines(console: Any, show: Any) -> list[str]:
    with console.capture() as captured:
        show()
    return captured.get().splitlines()


def test_one_name_per_number_in_the_cli_and_the_report(tmp_path: Path,
                                                       no_drawing: None) -> None:
    """Every model row of the report's Summary is printed by the CLI under the same name with
    the same AUC (and KS where the CLI prints one)."""
    secureboost = replace(vertical_results(), config={"model": "secureboost"})
    cases = ((horizontal_results(), simulate_console, print_results),
             (vertical_results(), vertical_console, print_vertical),
             (secureboost, vertical_console, print_vertical))
    for results, console, show in cases:
        lines = _cli_lines(console, lambda r=results, s=show: s(r, tmp_path / "results.json"))
        for label, auc, _, ks, _, _ in summary_rows(build_report(results)):
            line = next((x for x in lines if f" {label} " in f" {x.strip(' │|')} "), None)
            assert line is not None, (label, lines)
            assert auc in line and (ks == "" or ks in line), (label, line)


def calibrated(results: Any, y: np.ndarray, logit: np.ndarray, pd_map: PlattMap) -> Any:
    """``results`` with its test histograms of the raw ``logit`` and the ``calibration``
    section the run would write for ``pd_map`` (measured on the same rows)."""
    bad, good = score_histograms(y, 1 / (1 + np.exp(-logit)))
    auc, ks = auc_ks_from_histograms(bad, good)
    return replace(results, score_histograms=ScoreHistograms.from_counts(
        bad, good, logit_range=LOGIT_RANGE), federated=Metrics(auc=auc, ks=ks),
        calibration=calibration_section((pd_map, "training rows (summed histograms)", 9999),
                                        (bad, good)))


def shrunk_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, PlattMap]:
    """Labels from PDs whose logits the model shrinks fivefold (as the vertical Taylor-loss
    LR does), and the Platt map that undoes it."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-1.6, 1.3, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return y, true_logit / 5, PlattMap(slope=5.0, intercept=0.0)


def page_numbers(html: str) -> tuple[dict[tuple[Any, ...], str], dict[str, list[str]]]:
    keyed: dict[tuple[Any, ...], str] = {}
    derived: dict[str, list[str]] = {}
    for a, text in parse(html).numbers:
        if "data-key" in a:
            keyed[tuple(json.loads(a["data-key"]))] = text
        else:
            derived.setdefault(a["data-derived"], []).append(text)
    return keyed, derived


@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_a_calibrated_run_has_populated_monotone_grades_and_bands_near_the_diagonal(
        kind: str, no_drawing: None) -> None:
    y, logit, pd_map = shrunk_sample(5000, 4)
    base = horizontal_results() if kind == "horizontal" else vertical_results()
    raw = calibrated(base, y, logit, pd_map)
    _, before = page_numbers(build_report(replace(raw, calibration=None)))
    assert int(before["grades-populated"][0]) <= 3  # raw shrunk PDs: (almost) all in D or E
    html = build_report(raw)
    assert "not-calibrated" not in html and "fig-calibration" in parse(html).figures
    keyed, derived = page_numbers(html)
    assert int(derived["grades-populated"][0]) == 5 and derived["grades-monotone"] == ["yes"]
    scores = ScorecardScale().points_from_log_odds(pd_map.log_odds(bin_centres()))
    hist = raw.score_histograms
    grades = grade_table_from_scores(RiskGrades(), scores, hist.bad, hist.good)
    assert derived["grade-count"] == [f"{g.count:,}" for g in grades]
    cal = raw.calibration
    assert keyed[("calibration", "method")] == "platt"
    assert keyed[("calibration", "brier")] == f"{cal.brier:.4f}"
    assert keyed[("calibration", "mean_pd")] == f"{cal.mean_pd:.2%}"
    assert abs(cal.mean_pd - cal.observed_rate) < 0.01
    shown = [(float(keyed[("calibration", "bins", i, "mean_pd")].rstrip("%")) / 100,
              float(keyed[("calibration", "bins", i, "observed_rate")].rstrip("%")) / 100,
              int(keyed[("calibration", "bins", i, "rows")].replace(",", "")))
             for i in range(len(cal.bins))]
    assert len(shown) >= 8 and sum(n for _, _, n in shown) == 5000
    for mean_pd, observed, n in shown:  # near the diagonal: within 3 standard errors
        se = math.sqrt(max(mean_pd * (1 - mean_pd), 1e-4) / n)
        assert abs(observed - mean_pd) < max(3 * se, 0.01), (mean_pd, observed, n)
    assert "Hosmer-Lemeshow over the" in html and "the calibrated PDs" in html
    gap_points = (sum(b.mean_pd * b.rows - b.defaults for b in cal.bins)) / 50  # of 5,000 rows
    assert f"default rate {gap_points:+.2f} points" in html
