"""Reliability end to end: banks vanishing mid-round, coordinator crash and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from federation.ml.aggregation import flatten, weighted_mean
from federation.run.config import RunConfig
from federation.run.key_store import load_bank_private_key, provision_simulation_keys
from federation.steps.secure_sum import KIND_WEIGHTS, WEIGHT_BITS, WEIGHT_CLIP, PaillierBankSum
from federation.wire.records import (
    KEY_SEALED,
    KEY_SIGNATURE,
    KEY_WEIGHTS_SUM,
    sealed_from_record,
    step_of,
)

from .test_simulate_e2e import record_run, run_cli

pytestmark = pytest.mark.slow  # both tests run Flower simulations


def test_thirty_percent_of_banks_vanish_and_the_sum_of_survivors_is_exact(
    tmp_path: Path, data_dir: Path
) -> None:
    """10 banks, 3 vanish in round 2; Paillier sum of the 7 survivors = their weighted mean."""
    keys = tmp_path / "keys"
    provision_simulation_keys(keys, 10)
    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=10,
                    rounds=3, aggregation="paillier", keys_dir=str(keys), min_banks=6,
                    drop_schedule="2:1,4,7", out=str(tmp_path / "run"))
    result, seen = record_run(cfg)
    assert [h.banks for h in result.history] == [10, 7, 10]
    assert {d["round"] for d in result.dropouts} == {2}
    assert len([d for d in result.dropouts if d["step"] == "train"]) == 3
    # round r's model is scored in the exchange that trains round r + 1 (rounds 2 and 3),
    # the last one in a step of its own: one evaluate request per bank in the whole run
    scoring = [step_of(m.content).round for d, m in seen if d == "request"
               and m.metadata.message_type == "train" and step_of(m.content).evaluate]
    assert sorted(set(scoring)) == [1, 2] and len(scoring) == 20
    assert sum(1 for d, m in seen if d == "request"
               and m.metadata.message_type == "evaluate") == 10
    assert [p.evaluated for p in result.participation] == \
        [(0, 2, 3, 5, 6, 8, 9), tuple(range(10)), tuple(range(10))]

    bank_side = PaillierBankSum(load_bank_private_key(str(keys), 0), max_parties=10)
    run_id = result.run_id
    round2 = [bank_side.open(sealed_from_record(m.content[KEY_SEALED]), kind=KIND_WEIGHTS,
                             run_id=run_id, round=2)
              for d, m in seen
              if d == "reply" and m.has_content() and m.metadata.message_type == "train"
              and int(m.content[KEY_SIGNATURE]["round"]) == 2]
    assert len(round2) == 7
    # round 2's sum travels with round 3's train request, which also scores it
    combined = next(sealed_from_record(m.content[KEY_WEIGHTS_SUM]) for d, m in seen
                    if d == "request" and m.metadata.message_type == "train"
                    and KEY_WEIGHTS_SUM in m.content
                    and sealed_from_record(m.content[KEY_WEIGHTS_SUM]).parties == 7)
    opened = bank_side.open(combined, kind=KIND_WEIGHTS, run_id=run_id, round=2)
    got = opened[:-1] / opened[-1]
    expected = flatten(weighted_mean([([v[:-1] / v[-1]], v[-1]) for v in round2]))
    step = 2 * WEIGHT_CLIP / (2**WEIGHT_BITS - 1)
    assert np.max(np.abs(got - expected)) <= 7 * step * (1 + np.abs(expected).max())


def test_stop_after_round_3_of_6_and_resume_gives_the_uninterrupted_model(
    tmp_path: Path, data_dir: Path
) -> None:
    common = ["--data", str(data_dir / "german_credit.csv"), "--target", "bad", "--banks", "3",
              "--rounds", "6", "--model", "mlp"]
    stopped = run_cli("simulate", *common, "--halt-after", "3", "--out", str(tmp_path / "a"))
    assert stopped.returncode == 3, stopped.stderr
    assert f"fedcredit simulate --resume {tmp_path / 'a'}" in " ".join(stopped.stderr.split())
    checkpoint = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert checkpoint["rounds_done"] == 3
    resumed = run_cli("simulate", "--resume", str(tmp_path / "a"))
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli("simulate", *common, "--out", str(tmp_path / "b"))
    assert straight.returncode == 0, straight.stderr
    a = np.load(tmp_path / "a" / "model.npz")
    b = np.load(tmp_path / "b" / "model.npz")
    assert a.files == b.files
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-9)
    res_a = json.loads((tmp_path / "a" / "results.json").read_text())
    assert [h["round"] for h in res_a["history"]] == [1, 2, 3, 4, 5, 6]
    heads = [arg for k in range(3)  # each bank signed the heads it was shown, resume included
             for arg in ("--bank-heads", str(tmp_path / "a" / "keys" / f"bank-{k}"))]
    verify = run_cli("audit", "verify", str(tmp_path / "a"), *heads)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout
    assert "heads signed by 3 banks found in place" in verify.stdout
