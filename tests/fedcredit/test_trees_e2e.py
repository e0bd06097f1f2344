"""Horizontal boosted trees end to end in Flower's simulation (german_credit.csv: categoricals).

Lossless: the federated trees equal the trees grown on the pooled rows with the same bins and
settings, node for node; Paillier gives the very same trees as plain; a run stopped after tree
3 and resumed ends with the uninterrupted model; a bank sitting out a tree is recorded and the
run goes on; nothing of a bank's rows, labels or IDs crosses the wire, and under Paillier the
coordinator sees neither a histogram nor the trees.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message

from fedcredit.simulation.horizontal import run_federation
from fedcredit.simulation.trees import same_trees, tree_baselines
from federation.data.bank_data import bank_data
from federation.ml.gbdt import GBDTModel
from federation.run.config import RunConfig
from federation.run.key_store import provision_simulation_keys
from federation.run.results import TreeSummary
from federation.steps.tree_bank import tree_model_of
from federation.wire.records import sealed_from_record
from federation.wire.trees import KEY_TREE_STATE, STEP_TREE_LEVEL
from server.calibration import FITTED_ON_TRAINING, calibration_section

from .calibration_checks import check_calibration
from .test_simulate_e2e import run_cli

pytestmark = pytest.mark.slow

TREES = 5
EVAL_EVERY = 2  # test AUC after trees 2 and 4 and for the final model (5)


def _config(data_dir: Path, out: Path, **changes: object) -> RunConfig:
    base = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                     model="gbdt", trees=TREES, depth=3, bins=16, learning_rate=0.3,
                     eval_every=EVAL_EVERY, out=str(out))
    return dataclasses.replace(base, **changes)


def _payloads(message: Message) -> tuple[list[np.ndarray], list[bytes], str]:
    """Arrays, raw byte payloads and text of every record in a message (the helper this test
    imported from test_simulate_e2e before that test moved to the wire scanner)."""
    arrays, blobs, texts = [], [], []
    if not message.has_content():
        return arrays, blobs, ""
    for rec in message.content.values():
        if isinstance(rec, ArrayRecord):
            arrays.extend(a.ravel() for a in rec.to_numpy_ndarrays())
        elif isinstance(rec, ConfigRecord):
            for value in dict(rec).values():
                if isinstance(value, bytes):
                    blobs.append(value)
                else:
                    texts.append(str(value))
    return arrays, blobs, " ".join(texts)


def _run(cfg: RunConfig) -> tuple[object, list[tuple[str, Message]]]:
    seen: list[tuple[str, Message]] = []
    result = run_federation(cfg, observer=lambda d, m: seen.append((d, m)))
    return result, seen


@pytest.fixture(scope="module")
def plain(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = _config(data_dir, tmp_path_factory.mktemp("plain"))
    result, seen = _run(cfg)
    return cfg, result, seen


def _model(result: object) -> GBDTModel:
    release = result.tree_release  # type: ignore[attr-defined]
    assert release is not None
    return tree_model_of(release)[0]


def test_federated_trees_equal_the_pooled_trees(plain) -> None:
    cfg, result, _ = plain
    assert result.rounds_done == TREES and [h.round for h in result.history] == [2, 4, TREES]
    summary = TreeSummary(trees=cfg.trees, depth=cfg.depth, bins=cfg.bins,
                          learning_rate=cfg.learning_rate)
    centralized, local, summary = tree_baselines(cfg, result, summary)
    assert summary.same_trees_as_centralized is True
    assert summary.max_prediction_gap < 1e-9
    model = _model(result)
    assert len(model.trees) == TREES and all(t.n_nodes > 1 for t in model.trees)
    assert any(model.n_categories), "german_credit has categorical features"
    assert abs(result.history[-1].auc - centralized.auc) < 0.01  # histogram vs exact AUC
    assert result.history[-1].auc > 0.7
    assert len(local.per_bank) == cfg.banks
    cal = calibration_section(result.calibration, result.histograms)  # fitted on training rows
    assert cal is not None and cal.fitted_on == FITTED_ON_TRAINING
    check_calibration(cal, held_out_rows=int(np.sum(result.histograms)))


def test_no_row_label_or_id_crosses_the_wire(plain) -> None:
    cfg, _, seen = plain
    arrays, texts, blobs = [], [], []
    for _, m in seen:
        a, b, t = _payloads(m)
        arrays.extend(a)
        blobs.extend(b)
        arrays.extend(np.frombuffer(x, dtype=np.float64) for x in b if len(x) % 8 == 0)
        texts.append(t)
    text = " ".join(texts) + " ".join(x.decode("latin-1") for x in blobs)
    assert any(m.metadata.message_type == STEP_TREE_LEVEL.message_type for _, m in seen)
    for bank in range(cfg.banks):
        data = bank_data(cfg, bank)
        for table in (data.train, data.test):
            labels = table.y.astype(np.float64)
            assert not any(a.size == labels.size and np.array_equal(a, labels) for a in arrays)
            amounts = table.numeric["credit_amount"].to_numpy()
            for a in arrays:
                assert np.isin(amounts, a).mean() < 0.05
            for row in range(0, table.n_rows, 25):
                assert f"'{table.ids[row]}'" not in text and f'"{table.ids[row]}"' not in text


def test_paillier_grows_the_same_trees_and_hides_histograms_and_trees(
        plain, data_dir: Path, tmp_path: Path) -> None:
    cfg, result, _ = plain
    keys = tmp_path / "keys"
    provision_simulation_keys(keys, cfg.banks, bits=2048)
    enc_cfg = dataclasses.replace(cfg, aggregation="paillier", keys_dir=str(keys),
                                  out=str(tmp_path / "run"))
    encrypted, seen = _run(enc_cfg)
    assert same_trees(_model(encrypted), _model(result))
    assert [h.auc for h in encrypted.history] == [h.auc for h in result.history]
    states = 0
    for direction, msg in seen:
        if not msg.has_content() or msg.metadata.message_type != STEP_TREE_LEVEL.message_type:
            continue
        for key, rec in msg.content.items():
            if not isinstance(rec, ConfigRecord):
                continue
            if "payload" in rec:
                assert sealed_from_record(rec).scheme.startswith("paillier-"), (direction, key)
            if key == KEY_TREE_STATE:
                blob = rec["state"]
                assert isinstance(blob, bytes)
                assert b"boost-state" not in blob and b'"threshold"' not in blob
                states += 1
    assert states > TREES


def test_stop_after_tree_3_and_resume_gives_the_uninterrupted_model(
        plain, tmp_path: Path) -> None:
    cfg, result, _ = plain
    from server.errors import RunInterrupted

    halted = dataclasses.replace(cfg, halt_after=3, out=str(tmp_path))
    with pytest.raises(Exception) as info:
        _run(halted)
    assert isinstance(info.value, RunInterrupted) or "round 3" in str(info.value) or \
        "halt" in str(info.value).lower()
    resumed = run_federation(dataclasses.replace(halted, halt_after=0), resume=True)
    assert resumed.rounds_done == TREES
    assert same_trees(_model(resumed), _model(result))


def test_a_bank_sitting_out_a_tree_is_recorded(data_dir: Path, tmp_path: Path) -> None:
    cfg = _config(data_dir, tmp_path, trees=3, drop_schedule="2:1", min_banks=2)
    result, _ = _run(cfg)
    assert result.rounds_done == 3
    assert result.round_banks == [3, 2, 3]
    assert any("dropped out in round 2" in d.get("reason", "") for d in result.dropouts)


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--depth", "0", "--depth"), ("--bins", "1", "--bins"), ("--trees", "0", "--trees"),
    ("--model", "secureboost", "model"), ("--eval-every", "0", "eval-every"),
])
def test_bad_tree_settings_get_one_line_and_exit_2(option: str, value: str, named: str,
                                                   data_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
                   "--model", "gbdt", option, value, "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert any(named in ln for ln in lines), proc.stderr


def test_simulate_cli_writes_the_tree_model_and_xgboost_export(data_dir: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
                   "--banks", "3", "--model", "gbdt", "--trees", "3", "--depth", "2",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "federated trees equal the pooled trees" in " ".join(proc.stdout.split())
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "gbdt" and res["rounds"] == 3
    assert [h["round"] for h in res["history"]] == [3]  # default --eval-every 10: the final model
    assert res["trees"]["same_trees_as_centralized"] is True
    assert set(res["trees"]["gain"]) == set(res["features"])
    lr = res["trees"]["lr_reference"]  # the pooled LR beside the trees, for reference
    assert 0.6 < lr["auc"] < 1 and lr["auc"] != res["centralized"]["auc"]
    assert "logistic regression, pooled (reference)" in proc.stdout
    model = GBDTModel.from_json((out / "model.json").read_text())
    import xgboost as xgb
    booster = xgb.Booster(model_file=str(out / "model.xgboost.json"))
    assert int(booster.num_boosted_rounds()) == len(model.trees) == 3


@pytest.mark.parametrize("eval_every", [1, 10])
def test_early_stopping_over_flower_keeps_the_pooled_best_trees(data_dir: Path, tmp_path: Path,
                                                                eval_every: int) -> None:
    out = tmp_path / "run"
    proc = run_cli("simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
                   "--banks", "3", "--model", "gbdt", "--trees", "40", "--depth", "4",
                   "--bins", "16", "--learning-rate", "0.5", "--early-stopping-rounds", "3",
                   "--eval-every", str(eval_every), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads((out / "results.json").read_text())
    kept = res["trees"]["trees_kept"]
    assert res["trees"]["early_stopping_rounds"] == 3 and 0 < kept < 40
    assert f"early stopping kept {kept} of at most 40 trees" in " ".join(proc.stdout.split())
    assert res["trees"]["same_trees_as_centralized"] is True  # the pooled trainer stops there too
    assert len(GBDTModel.from_json((out / "model.json").read_text()).trees) == kept
    rounds = [h["round"] for h in res["history"]]
    assert rounds == sorted(rounds) and kept in rounds and rounds[-1] <= res["rounds"]
    entry = res["history"][rounds.index(kept)]
    assert res["federated"]["auc"] == pytest.approx(entry["auc"], abs=1e-12)  # the kept model's
    if eval_every == 1:
        assert rounds == list(range(1, rounds[-1] + 1))
        assert rounds[-1] > kept  # it grew past the best before cutting back
    else:  # validation losses after every tree, test AUC every 10th and for the kept trees
        assert all(r % eval_every == 0 for r in rounds if r != kept)
