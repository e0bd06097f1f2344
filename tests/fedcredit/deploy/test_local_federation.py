"""The local federation: one SuperLink and three bank SuperNodes as separate processes, TLS
and node authentication, Paillier aggregation, run through ``flwr run`` to completion; the
same AUC as the simulation of the same split; nothing left running afterwards."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from fedcredit.simulation.horizontal import run_federation
from federation.run.config import RunConfig
from federation.run.key_store import provision_simulation_keys

from .conftest import assert_all_stopped, launch_to_results

BANKS, ROUNDS = 3, 2
AUC_TOLERANCE = 0.005
HANG_GUARD_S = float(os.environ.get("FEDCREDIT_STARTUP_HANG_GUARD_S", "120"))
"""Timing goals live in benchmarks (the 30 s startup target: benchmarks/RESULTS.md, measured
with scripts/local_federation.py); here only a guard against a hung start."""
"""Launch -> round 1 starts (a train request reaches a bank): the issue's target on 2 cores
(measured 22-28 s on an otherwise idle 2-core machine; raise it on a shared, busy one)."""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, german: Path) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("local-federation") / "run"
    return launch_to_results(out, "--banks", str(BANKS), "--rounds", str(ROUNDS), "--data",
                             str(german), "--target", "bad", "--aggregation", "paillier",
                             "--record-wire"), out


def test_runs_to_completion_over_tls_with_node_authentication(
    deployed: tuple[dict, Path],
) -> None:
    results, _ = deployed
    deployment = results["deployment"]
    assert deployment["tls"] is True and deployment["node_auth"] is True
    assert deployment["status"] == "finished:completed"
    assert len(deployment["nodes"]) == BANKS
    for key in ("dataset", "banks", "rounds", "aggregation", "federated", "history",
                "wall_seconds", "startup_seconds"):
        assert key in results
    assert results["aggregation"] == "paillier" and results["banks"] == BANKS
    assert [h["round"] for h in results["history"]] == list(range(1, ROUNDS + 1))


def test_auc_matches_the_simulation_of_the_same_split(
    deployed: tuple[dict, Path], tmp_path: Path, german: Path,
) -> None:
    results, _ = deployed
    provision_simulation_keys(tmp_path / "keys", BANKS)
    simulated = run_federation(RunConfig(
        data_path=str(german), target="bad", banks=BANKS, rounds=ROUNDS,
        aggregation="paillier", keys_dir=str(tmp_path / "keys"), out=str(tmp_path / "sim")))
    gap = abs(results["federated"]["auc"] - simulated.history[-1].auc)
    print(f"deployed AUC {results['federated']['auc']:.6f}, simulated "
          f"{simulated.history[-1].auc:.6f}, gap {gap:.2e}")
    assert gap < AUC_TOLERANCE
    for deployed_round, sim_round in zip(results["history"], simulated.history, strict=True):
        assert abs(deployed_round["auc"] - sim_round.auc) < AUC_TOLERANCE


def test_startup_times(deployed: tuple[dict, Path]) -> None:
    results, _ = deployed
    timings: dict[str, Any] = {k: results[k] for k in (
        "federation_ready_seconds", "startup_seconds", "first_round_seconds", "wall_seconds")}
    print(f"timings: {timings}")
    assert 0 < results["federation_ready_seconds"] < results["startup_seconds"]
    assert results["startup_seconds"] < results["first_round_seconds"] < results["wall_seconds"]
    assert results["startup_seconds"] < HANG_GUARD_S


def test_no_process_is_left_running(deployed: tuple[dict, Path]) -> None:
    results, out = deployed
    records = assert_all_stopped(out)
    names = {r.name.split("/")[0] for r in records}
    assert {"superlink", "gateway", "registry", "flwr-run", "register", "bank-0", "bank-1",
            "bank-2"} <= names
    assert any(r.name.endswith("/child") for r in records)  # SuperExec & app processes
    assert {n["pid"] for n in results["deployment"]["nodes"]} <= {r.pid for r in records}


def test_each_party_holds_only_its_own_files(deployed: tuple[dict, Path]) -> None:
    _, out = deployed
    coordinator_keys = out / "coordinator" / "keys"
    # no bank's secret folder; the roster holds the banks' public node keys only
    assert sorted(p.name for p in coordinator_keys.iterdir() if p.is_dir()) == ["roster"]
    assert sorted(p.name for p in (coordinator_keys / "roster").iterdir()) == [
        f"bank-{k}.pub" for k in range(BANKS)]
    assert not (out / "coordinator" / "run" / "bank.csv").exists()
    rows = 0
    for k in range(BANKS):
        bank = out / "nodes" / f"bank-{k}"
        assert sorted(p.name for p in (bank / "keys").iterdir() if p.is_dir()) == [f"bank-{k}"]
        assert stat.S_IMODE((bank / "node.toml").stat().st_mode) == 0o600
        rows += len((bank / "bank.csv").read_text().splitlines()) - 1
    assert rows == 1000


def test_every_bank_recorded_its_own_side_and_none_leaks_its_file(
    deployed: tuple[dict, Path],
) -> None:
    """``--record-wire``: each bank's node wrote its own transcript beside its node.toml, the
    launcher merged them into OUT/wire.jsonl, and ``fedcredit audit wire`` finds nothing of
    any bank's file in it (each bank's privacy officer can run the same on its own side)."""
    from fedcredit.audit_wire.scan import audit_wire
    from federation.wire.transcript import read_transcript

    _, out = deployed
    parts = [out / "nodes" / f"bank-{k}" / "wire.jsonl" for k in range(BANKS)]
    merged = list(read_transcript(out / "wire.jsonl"))
    assert all(p.is_file() for p in parts)
    assert len(merged) == sum(len(list(read_transcript(p))) for p in parts) > 6 * ROUNDS
    assert len({line.node for _, line in merged}) == BANKS  # one Flower node per bank
    for k in range(BANKS):
        report = audit_wire(out, out / "nodes" / f"bank-{k}" / "bank.csv", target="bad")
        assert report.clean, [f.describe() for f in report.findings]
