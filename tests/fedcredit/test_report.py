"""The products commands on a real `fedcredit simulate` run folder: report, score, export-scorecard.

One simulation (german_credit.csv, 3 banks, 3 rounds) per module. The report's numbers are
checked against results.json (grades of the calibrated PDs, calibration bands near the
diagonal, the LR as export-scorecard writes it, the audit log's verdict), its figures counted,
and the page rendered in headless Chromium where one is installed: at desktop width, and at
390 px, where the page must not scroll sideways.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from fedcredit.cli.products import register
from fedcredit.report.html import build_report, load_results, value_at
from fedcredit.report.statistics import grade_table_from_scores
from federation.data.table import load_credit_csv
from federation.ml.calibration import PlattMap, bin_centres
from federation.run.results import PsiSummary, VerticalResults
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.scorecard.scoring import RunFolderError, load_run_model

REPO = Path(__file__).resolve().parents[2]
ALL_FIGURES = {"fig-roc", "fig-ks", "fig-score-grades", "fig-gains", "fig-calibration",
               "fig-auc-rounds", "fig-banks"}


def products_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app with the products commands."""

    register(app)
    return app


def invoke(*args: str):
    return CliRunner().invoke(products_app(), list(args), env={"COLUMNS": "160"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("sim") / "run"
    exe = Path(sys.executable).with_name("fedcredit")
    proc = subprocess.run(
        [str(exe), "simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
         "--banks", "3", "--rounds", "3", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def report_html(run_dir: Path) -> str:
    result = invoke("report", str(run_dir))
    assert result.exit_code == 0, result.output
    return (run_dir / "report.html").read_text(encoding="utf-8")


class _Page(HTMLParser):
    """Collects tagged numbers, figures and anything that would load from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[tuple[dict[str, str], str]] = []
        self.figures: list[str] = []
        self.images: list[dict[str, str]] = []
        self.outside: list[str] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "span" and ("data-key" in a or "data-derived" in a):
            self._open, self._text = a, ""
        if tag == "figure":
            self.figures.append(a.get("id", ""))
        if tag == "img":
            self.images.append(a)
        if tag in ("script", "link", "iframe") or re.match(r"https?:", a.get("src", "")):
            self.outside.append(tag)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open is not None:
            self.numbers.append((self._open, self._text))
            self._open = None


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.mark.slow
def test_report_numbers_come_from_results_json(run_dir: Path, report_html: str) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    page = parse(report_html)
    keyed = [(json.loads(a["data-key"]), a["data-format"], text)
             for a, text in page.numbers if "data-key" in a]
    assert len(keyed) > 60
    for path, spec, text in keyed:
        value = value_at(results, path)
        assert value is not None, path
        assert text == format(value, spec), (path, text)
    paths = {tuple(p) for p, _, _ in keyed}
    assert ("federated", "auc") in paths and ("centralized", "ks") in paths
    assert ("local_only", "per_bank", 2, "federated_own_test_auc") in paths
    assert ("history", 2, "auc") in paths and ("config", "aggregation") in paths
    derived = {}
    for a, text in page.numbers:
        derived.setdefault(a.get("data-derived"), []).append(text)
    assert derived["gini"][0] == f"{2 * results['federated']['auc'] - 1:.4f}"
    hist = results["score_histograms"]
    pd_map = PlattMap.from_dict(results["calibration"]["map"])  # grades of calibrated PDs
    scores = ScorecardScale().points_from_log_odds(pd_map.log_odds(bin_centres()))
    grades = grade_table_from_scores(RiskGrades(), scores, hist["bad"], hist["good"])
    assert derived["grade-count"] == [f"{g.count:,}" for g in grades]
    assert sum(g.count for g in grades) == sum(hist["bad"]) + sum(hist["good"])
    assert derived["grade-default-rate"] == [f"{g.default_rate:.1%}" for g in grades]


@pytest.mark.slow
def test_a_real_run_has_populated_monotone_grades_and_calibration_near_the_diagonal(
        run_dir: Path, report_html: str) -> None:
    """Issue 13's 'done when' on a real `fedcredit simulate` run: the numbers behind the
    calibration figure are the run's held-out calibration bands, near the diagonal."""
    cal = json.loads((run_dir / "results.json").read_text())["calibration"]
    page = parse(report_html)
    assert "fig-calibration" in page.figures and "not-calibrated" not in report_html
    derived: dict[str, list[str]] = {}
    keyed = {}
    for a, text in page.numbers:
        if "data-key" in a:
            keyed[tuple(json.loads(a["data-key"]))] = text
        else:
            derived.setdefault(a["data-derived"], []).append(text)
    assert int(derived["grades-populated"][0]) >= 4 and derived["grades-monotone"] == ["yes"]
    rows = cal["rows"]
    assert abs(cal["mean_pd"] - cal["observed_rate"]) < 3 * math.sqrt(0.25 / rows)
    for i, band in enumerate(cal["bins"]):
        assert keyed[("calibration", "bins", i, "mean_pd")] == f"{band['mean_pd']:.2%}"
        assert keyed[("calibration", "bins", i, "observed_rate")] == f"{band['observed_rate']:.2%}"
        se = math.sqrt(max(band["mean_pd"] * (1 - band["mean_pd"]), 0.01) / band["rows"])
        assert abs(band["observed_rate"] - band["mean_pd"]) < 3 * se, band
    # stability: the banks released their summed training-score counts (700 training rows)
    results = json.loads((run_dir / "results.json").read_text())
    assert sum(results["training_scores"]["rows"]) == 700
    assert len(derived["psi"]) == 1 and 0 <= float(derived["psi"][0]) < 0.25


@pytest.mark.slow
def test_report_is_self_contained_with_every_figure(report_html: str) -> None:
    page = parse(report_html)
    assert set(page.figures) == ALL_FIGURES  # no IV chart: this run did not bin features
    assert len(page.images) == len(ALL_FIGURES)
    for img in page.images:
        assert img["alt"] and img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.outside == []
    assert "plain</b>: Plain aggregation" in report_html


@pytest.mark.slow
def test_the_model_section_shows_the_released_lr_as_export_scorecard_does(
        run_dir: Path, report_html: str) -> None:
    results = load_results(run_dir)
    assert results.calibration is not None
    card = load_run_model(run_dir).scorecard(ScorecardScale(), RiskGrades())
    slope = PlattMap.from_dict(results.calibration.map).slope
    derived: dict[str, list[str]] = {}
    for a, text in parse(report_html).numbers:
        derived.setdefault(a.get("data-derived", ""), []).append(text)
    coefficients = [n.coefficient for n in card.numeric] + [
        b.coefficient for c in card.categorical for b in c.bins]
    points = [n.points_per_unit for n in card.numeric] + [
        b.points for c in card.categorical for b in c.bins]
    assert derived["model-coefficient"] == [f"{c:+.4f}" for c in coefficients]
    assert derived["model-points"] == [f"{p:+.2f}" for p in points]
    assert derived["model-cal-points"] == [f"{slope * p:+.2f}" for p in points]
    assert derived["model-base-points"] == [f"{card.base_points:.2f}"]


@pytest.mark.slow
def test_the_run_identity_checks_the_audit_log(tmp_path: Path, run_dir: Path,
                                               report_html: str, data_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    assert results["audit"]["head"] in report_html and "intact: " in report_html
    first = json.loads((run_dir / "audit.jsonl").read_text().splitlines()[0])
    identity = results["identity"]  # written by the run itself
    assert identity["run_id"] == first["run_id"] and first["run_id"] in report_html
    assert identity["started_utc"] <= identity["finished_utc"]
    digest = hashlib.sha256((data_dir / "german_credit.csv").read_bytes()).hexdigest()
    assert identity["data_sha256"] == {"data set": digest} and "(the same file)" in report_html
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run_dir / "results.json", copy)
    lines = (run_dir / "audit.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"seq":1', '"seq":7')  # a record altered after the run
    (copy / "audit.jsonl").write_text("\n".join(lines) + "\n")
    result = invoke("report", str(copy))
    assert result.exit_code == 0, result.output
    said = (copy / "report.html").read_text()
    assert "BROKEN: record 1" in said and "intact: " not in said


@pytest.mark.slow
def test_iv_chart_only_where_binning_ran(run_dir: Path) -> None:
    results = load_results(run_dir)  # a horizontal run: no IV (see the test above)
    with_iv = VerticalResults(
        run_id="r", psi=PsiSummary(bank_rows=1000, center_rows=1000, intersection=800, seconds=1.0),
        federated=results.federated, score_histograms=results.score_histograms,
        iv={"duration_in_month": 0.21, "purpose": 0.07, "age_in_years": 0.02}, epochs=1,
        epoch_seconds=(1.0,), train_rows=560, test_rows=240, bank_features=("duration_in_month",),
        center_features=("purpose", "age_in_years"), bytes_relayed=0, key_bits=2048, config={})
    page = parse(build_report(with_iv))
    assert "fig-iv" in page.figures
    iv_numbers = [t for a, t in page.numbers if a.get("data-key", "").startswith('["iv"')]
    assert iv_numbers == ["0.2100", "0.0700", "0.0200"]


@pytest.mark.slow
def test_report_of_a_deployment_run_without_baselines(run_dir: Path) -> None:
    results = replace(load_results(run_dir), centralized=None, local_only=None,
                      score_histograms=None, aggregation="paillier")
    html = build_report(results)
    assert parse(html).figures == ["fig-calibration", "fig-auc-rounds"]  # no histograms
    assert "No baselines" in html and "paillier" in html and "ROC, KS, grades" in html
    bare = build_report(replace(results, calibration=None))
    assert parse(bare).figures == ["fig-auc-rounds"] and "not-calibrated" in bare


CHROMIUM = pytest.mark.skipif(shutil.which("chromium") is None,
                              reason="chromium not installed: apt-get install chromium to run "
                                     "this test")


FRAME = ("<!DOCTYPE html><html><body style='margin:0'><script>window.addEventListener('message',"
         "e=>document.body.insertAdjacentHTML('beforeend',e.data));</script><iframe "
         "src='{src}' style='border:0;width:{width}px;height:900px'></iframe></body></html>")


def render(tmp_path: Path, html: str, probe: str, *, width: int | None = None) -> str:
    """The DOM of ``html`` with ``probe`` run after load, from headless Chromium.

    With ``width`` the page loads in an iframe that wide (headless Chromium's window is at
    least 500 px), and ``probe`` posts its findings to the frame's parent as HTML.
    """
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    shown = page
    if width is not None:
        shown = tmp_path / "frame.html"
        shown.write_text(FRAME.format(src=page.name, width=width), encoding="utf-8")
    proc = subprocess.run(
        [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--hide-scrollbars", "--virtual-time-budget=5000", "--dump-dom", shown.as_uri()],
        capture_output=True, text=True, timeout=120)
    return proc.stdout + "\n" + proc.stderr[-2000:]


@pytest.mark.slow
@CHROMIUM
def test_report_renders_in_headless_chromium(tmp_path: Path, report_html: str) -> None:
    probe = ("<script>window.addEventListener('load',()=>{const i=[...document.querySelectorAll"
             "('img.figure')];const d=document.createElement('div');d.id='render-check';"
             "d.dataset.total=i.length;d.dataset.loaded=i.filter(x=>x.complete&&x.naturalWidth>0)"
             ".length;document.body.appendChild(d);});</script>")
    dom = render(tmp_path, report_html, probe)
    found = re.search(r'id="render-check" data-total="(\d+)" data-loaded="(\d+)"', dom)
    assert found, dom[-2000:]
    assert found.groups() == (str(len(ALL_FIGURES)), str(len(ALL_FIGURES)))


@pytest.mark.slow
@CHROMIUM
def test_report_fits_a_phone_width_without_sideways_scrolling(tmp_path: Path,
                                                             report_html: str) -> None:
    """At 390 px the page never scrolls sideways: wide tables scroll inside their own box and
    figures shrink to the width."""
    probe = ("<script>window.addEventListener('load',()=>{const e=document.documentElement;"
             "const wide=[...document.querySelectorAll('body *')].filter(x=>!x.closest('.scroll')"
             "&&x.getBoundingClientRect().right>e.clientWidth+1).map(x=>x.tagName+'#'+x.id);"
             "const d=document.createElement('div');d.id='width-check';"
             "d.dataset.viewport=e.clientWidth;d.dataset.page=e.scrollWidth;"
             "d.dataset.body=document.body.scrollWidth;d.dataset.wide=wide.slice(0,5).join(',');"
             "d.dataset.tables=document.querySelectorAll('.scroll > table').length;"
             "parent.postMessage(d.outerHTML,'*');});</script>")
    dom = render(tmp_path, report_html, probe, width=390)
    found = re.search(r'id="width-check" data-viewport="(\d+)" data-page="(\d+)" '
                      r'data-body="(\d+)" data-wide="([^"]*)" data-tables="(\d+)"', dom)
    assert found, dom[-2000:]
    viewport, page_width, body_width, wide, tables = found.groups()
    assert int(viewport) <= 400, viewport  # the window really is phone-sized
    assert int(page_width) <= int(viewport) and int(body_width) <= int(viewport), found.groups()
    assert wide == "" and int(tables) >= 8


@pytest.mark.slow
def test_score_and_export_on_the_simulate_output(tmp_path: Path, run_dir: Path,
                                                 data_dir: Path) -> None:
    scored = tmp_path / "scores.csv"
    result = invoke("score", "--model", str(run_dir), "--data", str(data_dir / "german_credit.csv"),
                    "--out", str(scored))
    assert result.exit_code == 0, result.output
    assert "1,000 rows scored" in result.output and "PSI vs the run's test scores" in result.output
    said = " ".join(result.output.split())
    assert "(in-sample risk): AUC" in said and "this is the run's own data set" in said
    # another file: figures out of sample only when the user says so; the run's own file never
    other = tmp_path / "other.csv"
    pd.read_csv(data_dir / "german_credit.csv").head(300).to_csv(other, index=False)
    for flags, label, warned in (([], "in-sample risk", "Pass --out-of-sample"),
                                 (["--out-of-sample"], "out of sample", None)):
        said = " ".join(invoke("score", "--model", str(run_dir), "--data", str(other), "--out",
                               str(tmp_path / "o.csv"), *flags).output.split())
        assert f"({label}): AUC" in said and (warned is None) == ("warning" not in said), said
        if warned:
            assert warned in said
    said = " ".join(invoke("score", "--model", str(run_dir), "--data",
                           str(data_dir / "german_credit.csv"), "--out", str(tmp_path / "o.csv"),
                           "--out-of-sample").output.split())
    assert "(in-sample risk): AUC" in said and "this is the run's own data set" in said
    rows = pd.read_csv(scored, keep_default_na=False)
    assert len(rows) == 1000 and set(rows["grade"]) <= set("ABCDE")
    result = invoke("export-scorecard", "--model", str(run_dir))
    assert result.exit_code == 0, result.output
    card = LinearScorecard.from_json((run_dir / "scorecard.json").read_text())
    assert card.target == "bad" and card.scale == ScorecardScale()
    assert card.feature_names == json.loads((run_dir / "results.json").read_text())["features"]
    # the exported points reproduce the scores of `fedcredit score` (to their 2 decimals)
    table = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    assert list(rows["id"].astype(str)) == list(table.ids)
    np.testing.assert_allclose(card.points(card.preprocessor().transform(table)), rows["score"],
                               atol=0.006)


def test_commands_have_help_and_named_errors(tmp_path: Path) -> None:
    for command in ("score", "report", "export-scorecard"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--base-odds" in result.output
    result = invoke("report", str(tmp_path / "missing"))
    assert isinstance(result.exception, RunFolderError)
    assert "fedcredit simulate" in str(result.exception)
    result = invoke("report", str(tmp_path), "--grades", "500,600")
    assert "strictly decreasing" in str(result.exception)
