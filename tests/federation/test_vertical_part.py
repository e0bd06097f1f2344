"""A vertical party's model part (issue 15): its file round-trips, both parties' parts carry
one model id, a part scores as its weights say, and an LR party's kept state drops its
training rows (issue 14, part 6: the node state travels with every message)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.table import CreditTable
from federation.data.vertical_data import AlignedParty, align, prepare
from federation.errors import RunFolderError
from federation.ml.preprocess import Preprocessor
from federation.run.folder import RunFolder
from federation.run.vertical_config import VerticalConfig
from federation.run.vertical_part import VerticalModelPart, find_part, read_part
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.steps import vertical_party
from protocols.paillier.keys import generate_paillier_keypair
from protocols.vertical_lr.steps import (
    VerticalLRConfig,
    VerticalLRState,
    make_bank_party,
    make_center_party,
)

PREP = Preprocessor(("amount", "age"), (10.0, 40.0), (2.0, 8.0), (("grade", ("A", "B")),), 50)


def _part(role: str, weights: tuple[float, ...]) -> VerticalModelPart:
    return VerticalModelPart(role, "run-1", "m" * 64, weights, PREP, 41, target="bad",
                             id_column="ID")


@settings(max_examples=30, deadline=None)
@given(role=st.sampled_from(("bank", "center")),
       weights=st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=5))
def test_a_part_round_trips_through_its_file(role: str, weights: list[float]) -> None:
    part = _part(role, tuple(weights[:5 if role == "bank" else 4]))
    back = VerticalModelPart.from_json(part.to_json(), "here")
    assert back == part


def test_a_bad_part_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    good = json.loads(_part("bank", (0.1, 0.2, 0.3, 0.4, 0.5)).to_json())
    for broken in ({**good, "format": "other"}, {**good, "weights": [0.1]},
                   {**good, "role": "coordinator"}, {k: v for k, v in good.items() if k != "run_id"}):
        path = tmp_path / "vertical-part.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(RunFolderError, match="vertical-part.json: unreadable .* rerun"):
            read_part(path)


def test_a_part_scores_as_its_weights_say() -> None:
    bank = _part("bank", (-1.5, 0.5, -0.25, 0.75, -0.5))
    center = _part("center", (0.5, -0.25, 0.75, -0.5))
    z = np.array([[1.0, -0.5, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0]])
    for part in (bank, center):
        card = part.scorecard(ScorecardScale(), RiskGrades())
        np.testing.assert_allclose(card.log_odds(z), part.intercept + z @ part.coefficients)
    assert center.scorecard(ScorecardScale(), RiskGrades()).intercept == 0.0


def test_find_part_takes_the_file_a_party_folder_or_a_simulation_run_folder(
        tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    written = _part("center", (0.1, 0.2, 0.3, 0.4)).write(run.party("center"))
    assert find_part(run.path, "center") == written
    assert find_part(run.party("center"), "center") == written
    assert find_part(written, "bank") == written  # the caller checks the role it holds
    assert find_part(run.path, "bank") is None


def _aligned(role: str, rows: int = 80) -> AlignedParty:
    rng = np.random.default_rng(3)
    ids = np.array([f"e{i:03d}" for i in range(rows)], dtype=object)
    table = CreditTable(source="t.csv", target="bad" if role == "bank" else "",
                        y=rng.integers(0, 2, rows).astype(np.float64),
                        numeric=pd.DataFrame({"amount": rng.normal(size=rows)}),
                        categorical=pd.DataFrame(index=range(rows)), ids=ids, dropped=(),
                        labelled=role == "bank")
    return prepare(align(table, np.arange(rows)), role, run_salt="s", test_fraction=0.3)


def test_an_lr_party_keeps_its_held_out_rows_and_preprocessor_only() -> None:
    aligned = _aligned("bank")
    kept = vertical_party.kept_for_scoring(aligned)
    assert len(kept.x_train) == len(kept.train_table.y) == len(kept.tree_train) == 0
    assert kept.y_train is not None and len(kept.y_train) == 0
    np.testing.assert_array_equal(kept.x_test, aligned.x_test)
    np.testing.assert_array_equal(kept.y_test, aligned.y_test)
    assert kept.preprocessor == aligned.preprocessor
    assert kept.feature_names == aligned.feature_names


def test_both_parties_parts_carry_one_model_id_and_their_own_weights(tmp_path: Path) -> None:
    keys = {r: generate_paillier_keypair(512, allow_insecure_test_key=True)
            for r in ("bank", "center")}
    cfg = VerticalConfig(out=str(tmp_path / "run"), target="bad", id_col="ID")
    parts = {role: _aligned(role) for role in ("bank", "center")}
    bank_rows = parts["bank"]
    config = VerticalLRConfig("r1", len(bank_rows.x_train), 1, 1, 32, 0.5, 0.0, 0)
    assert bank_rows.y_train is not None
    bank = make_bank_party(bank_rows.x_train, bank_rows.y_train, config=config,
                           private_key=keys["bank"][1], peer_public_key=keys["center"][0])
    center = make_center_party(parts["center"].x_train, config=config,
                               private_key=keys["center"][1], peer_public_key=keys["bank"][0])
    written = {}
    for role, party, weights in (("bank", bank, [0.2, -0.3]), ("center", center, [0.7])):
        state = VerticalLRState(role, np.array(weights), updates=12)
        part = vertical_party.trained_part(cfg, role, party, state, parts[role])
        folder = vertical_party.part_folder(cfg, role, data_path=None, model_dir=None,
                                            run_id="r1")
        written[role] = read_part(part.write(folder))
        assert folder == RunFolder(tmp_path / "run").party(role)
        assert written[role].weights == tuple(weights) and written[role].updates == 12
    assert written["bank"].model_id == written["center"].model_id
    assert (written["bank"].target, written["center"].target) == ("bad", "")
    deployed = vertical_party.part_folder(cfg, "bank", data_path="/srv/bank/loans.csv",
                                          model_dir=None, run_id="r1")
    assert deployed == Path("/srv/bank/fedcredit-models/r1")
    assert vertical_party.part_folder(cfg, "bank", data_path="/srv/bank/loans.csv",
                                      model_dir="/models", run_id="r1") == Path("/models/r1")
