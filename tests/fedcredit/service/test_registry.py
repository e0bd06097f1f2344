"""The model registry: numbered versions, the split of a vertical model, hot reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedcredit.service.errors import RegistryError
from fedcredit.service.model_parts import design_rows, split_scorecard
from fedcredit.service.registry import ModelHolder, ModelRegistry, ServedModel
from federation.ml.preprocess import Preprocessor
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale


@pytest.fixture(scope="module")
def card() -> LinearScorecard:
    """A small LR scorecard: two numeric bank columns, one numeric and one categorical center
    column."""
    prep = Preprocessor(("loan_amount", "utilisation", "arrears"), (100.0, 0.5, 1.0),
                        (50.0, 0.2, 2.0), (("tax_grade", ("A", "B", "C")),), 1000)
    weights = [np.array([[0.4, 0.8, 0.6, -0.3, 0.1, 0.5]]), np.array([-1.5])]
    return LinearScorecard.from_lr(prep, weights, scale=ScorecardScale(), grades=RiskGrades())


CENTER = ("arrears", "tax_grade")


def test_versions_are_numbered_and_the_last_promotion_is_current(tmp_path: Path,
                                                                  card: LinearScorecard) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="fedcredit models promote"):
        reg.current("m")
    for expected in (1, 2, 3):
        served = reg.promote(card, name="m", part="whole", source="run")
        assert (served.version, served.label) == (expected, f"m/v{expected}")
    assert reg.versions("m") == [1, 2, 3] and reg.current("m") == 3
    loaded = reg.load("m", 2)
    assert loaded.card == card and loaded.version == 2
    assert ServedModel.from_json(loaded.to_json(), "x") == loaded


def test_each_party_file_holds_only_its_own_weights(tmp_path: Path, card: LinearScorecard) -> None:
    bank = ModelRegistry(tmp_path / "bank").promote(card, name="m", part="bank", source="r",
                                                    center_columns=CENTER)
    center = ModelRegistry(tmp_path / "center").promote(card, name="m", part="center",
                                                        source="r", center_columns=CENTER)
    assert bank.model_id == center.model_id
    center_file = json.loads((tmp_path / "center" / "m" / "v0001" / "model.json").read_text())
    names = [n["feature"] for n in center_file["scorecard"]["numeric"]] + \
        [c["feature"] for c in center_file["scorecard"]["categorical"]]
    assert names == ["arrears", "tax_grade"] and center_file["scorecard"]["intercept"] == 0.0
    assert "loan_amount" not in json.dumps(center_file["scorecard"])
    assert "arrears" not in json.dumps(bank.card.to_dict()["numeric"])


def test_split_parts_add_up_to_the_whole_scorecard(card: LinearScorecard) -> None:
    bank, center = split_scorecard(card, CENTER)
    rows = [{"loan_amount": 180.0, "utilisation": "0.9", "arrears": None, "tax_grade": "C"},
            {"loan_amount": "NA", "utilisation": 0.1, "arrears": 7, "tax_grade": "unseen"}]
    where = ["r0", "r1"]
    whole = card.log_odds(design_rows(card, rows, where))
    parts = bank.log_odds(design_rows(bank, rows, where)) + center.log_odds(
        design_rows(center, rows, where))
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("columns, match", [(("nope",), "not in the model"),
                                            (("loan_amount", "utilisation", "arrears",
                                              "tax_grade"), "at least one column")])
def test_a_split_that_leaves_a_party_nothing_or_names_no_column_is_refused(
        tmp_path: Path, card: LinearScorecard, columns: tuple[str, ...], match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        ModelRegistry(tmp_path).promote(card, name="m", part="bank", source="r",
                                        center_columns=columns)
    with pytest.raises(RegistryError, match="--part"):
        ModelRegistry(tmp_path).promote(card, name="m", part="whole", source="r",
                                        center_columns=CENTER)


def test_holder_swaps_model_and_prepared_state_together_after_the_interval(
        tmp_path: Path, card: LinearScorecard) -> None:
    reg = ModelRegistry(tmp_path)
    reg.promote(card, name="m", part="whole", source="r")
    now = [0.0]
    holder = ModelHolder(reg, "m", interval_s=2.0, prepare=lambda m: f"table-{m.version}",
                         clock=lambda: now[0])
    in_flight = holder.served
    reg.promote(card, name="m", part="whole", source="r")
    now[0] = 1.0
    assert not holder.refresh() and holder.served[0].version == 1  # not yet checked
    now[0] = 2.5
    assert holder.refresh() and holder.served == (reg.load("m", 2), "table-2")
    assert in_flight[0].version == 1 and in_flight[1] == "table-1"  # a request keeps its pair


def test_a_damaged_promotion_keeps_the_loaded_version(tmp_path: Path, card: LinearScorecard) -> None:
    reg = ModelRegistry(tmp_path)
    reg.promote(card, name="m", part="whole", source="r")
    holder = ModelHolder(reg, "m", interval_s=0.0)
    (tmp_path / "m" / "v0002").mkdir()
    (tmp_path / "m" / "v0002" / "model.json").write_text("{", encoding="utf-8")
    (tmp_path / "m" / "current").write_text("2\n", encoding="utf-8")
    assert not holder.refresh() and holder.served[0].version == 1
    with pytest.raises(RegistryError, match="unreadable promoted model"):
        reg.load("m")


def test_cli_promote_list_and_service_key(tmp_path: Path, card: LinearScorecard) -> None:
    from typer.testing import CliRunner

    from fedcredit.cli.main import app
    from fedcredit.service.auth import ApiKeys

    source = tmp_path / "scorecard.json"
    source.write_text(card.to_json(), encoding="utf-8")
    runner = CliRunner()
    registry = str(tmp_path / "reg")
    for _ in range(2):
        result = runner.invoke(app, ["models", "promote", str(source), "--name", "m", "--registry",
                                     registry, "--part", "center", "--center-columns",
                                     "arrears,tax_grade"])
        assert result.exit_code == 0, result.output
    assert "promoted m/v2 (center part" in " ".join(result.output.split())
    listed = runner.invoke(app, ["models", "list", "--name", "m", "--registry", registry]).output
    assert "* m/v2  center" in listed and "  m/v1  center" in listed
    keys = tmp_path / "keys.json"
    result = runner.invoke(app, ["service-key", "--keys", str(keys), "--institution", "bank-0",
                                 "--scope", "partial-score", "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    key = (tmp_path / "k").read_text(encoding="utf-8").strip()
    assert ApiKeys.load(keys).identify(f"Bearer {key}").institution == "bank-0"
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0
