"""`fedcredit score` and `fedcredit report` on a boosted-tree run folder (`--model gbdt`).

One tiny simulation (german_credit.csv, 3 banks, 3 trees of depth 2) per module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedcredit.simulation.horizontal import simulate
from federation.data.table import load_credit_csv
from federation.errors import RunFolderError
from federation.ml.gbdt import GBDTModel
from federation.ml.preprocess import Preprocessor
from federation.ml.tree_features import tree_matrix
from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from federation.scorecard.linear import UnsupportedModelError
from federation.scorecard.scale import ScorecardScale
from federation.scorecard.scoring import load_run_model

from .test_report import invoke, parse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gbdt") / "run"
    simulate(RunConfig(model="gbdt", trees=3, depth=2, banks=3, target="bad",
                       data_path=str(data_dir / "german_credit.csv"), out=str(out)))
    return out


def test_score_a_tree_run_end_to_end(tmp_path: Path, tree_run: Path, data_dir: Path) -> None:
    scored = tmp_path / "scores.csv"
    result = invoke("score", "--model", str(tree_run), "--data",
                    str(data_dir / "german_credit.csv"), "--out", str(scored))
    assert result.exit_code == 0, result.output
    assert "1,000 rows scored" in result.output and "AUC" in result.output
    assert "PSI vs the run's test scores" in result.output and "rows/s" in result.output
    rows = pd.read_csv(scored, keep_default_na=False, dtype={"id": str})
    assert list(rows.columns) == ["id", "probability", "score", "grade", "reason_1",
                                  "reason_2", "reason_3"]
    folder = RunFolder(tree_run)
    model = GBDTModel.from_json(folder.tree_model.read_text())
    prep = Preprocessor.from_json(folder.preprocessor.read_text())
    table = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    raw = model.predict_proba(tree_matrix(table, prep))
    pd_map = load_run_model(tree_run).calibration  # the run's calibration map (issue 13)
    assert pd_map is not None
    expected = pd_map.pd(np.log(raw / (1 - raw)))
    assert not np.allclose(expected, raw, atol=1e-3)  # scoring applies the map
    assert list(rows["id"]) == list(table.ids)
    np.testing.assert_allclose(rows["probability"], expected, atol=1e-6)
    np.testing.assert_allclose(rows["score"], ScorecardScale().points(expected), atol=0.01)
    assert set(rows["grade"]) <= set("ABCDE")
    split_on = {prep_name.replace("_", " ") for prep_name in _split_features(model, prep)}
    reasons = {r for c in ("reason_1", "reason_2", "reason_3") for r in rows[c] if r}
    assert reasons and reasons <= split_on
    assert (rows["reason_1"] != "").mean() > 0.3


def _split_features(model: GBDTModel, prep: Preprocessor) -> set[str]:
    from federation.ml.tree_features import tree_feature_names

    names = tree_feature_names(prep)
    return {names[f] for t in model.trees for f in t.feature[t.left >= 0]}


def test_tree_run_without_its_model_says_it_was_not_released(tmp_path: Path, tree_run: Path,
                                                             data_dir: Path) -> None:
    kept = tmp_path / "kept"
    shutil.copytree(tree_run, kept, ignore=shutil.ignore_patterns("keys"))
    RunFolder(kept).tree_model.unlink()
    result = invoke("score", "--model", str(kept), "--data", str(data_dir / "german_credit.csv"),
                    "--out", str(tmp_path / "s.csv"))
    assert isinstance(result.exception, RunFolderError)
    assert "model.json" in str(result.exception) and "did not release" in str(result.exception)
    RunFolder(kept).tree_model.write_text('{"format": "something-else"}')
    with pytest.raises(RunFolderError, match="unreadable"):
        load_run_model(kept)


def test_export_scorecard_refuses_trees(tree_run: Path) -> None:
    result = invoke("export-scorecard", "--model", str(tree_run))
    assert isinstance(result.exception, UnsupportedModelError)
    assert "fedcredit score" in str(result.exception)


def test_report_of_a_tree_run(tmp_path: Path, tree_run: Path) -> None:
    out = tmp_path / "report.html"
    result = invoke("report", str(tree_run), "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    assert "fig-gain" in page.figures and "fig-roc" in page.figures and not page.outside
    assert '<h2 id="trees">Boosted trees</h2>' in html and 'id="gain"' in html
    keyed = {tuple(json.loads(a["data-key"])): text for a, text in page.numbers
             if "data-key" in a}
    trees = json.loads(RunFolder(tree_run).results.read_text())["trees"]
    assert keyed[("trees", "trees")] == "3" and keyed[("trees", "depth")] == "2"
    assert keyed[("trees", "bins")] == str(trees["bins"])
    assert keyed[("trees", "learning_rate")] == f"{trees['learning_rate']:g}"
    for name, gain in trees["gain"].items():
        assert keyed[("trees", "gain", name)] == f"{gain:.4f}"
    lossless = [text for a, text in page.numbers if a.get("data-derived") == "lossless"]
    assert lossless == ["yes"]
    assert "<h2>Trees</h2>" in html and "gradient and hessian histograms" in html
