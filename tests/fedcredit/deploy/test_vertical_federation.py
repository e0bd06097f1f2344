"""The local vertical job: a bank and a credit-center SuperNode as separate processes, TLS
and node authentication, the vertical workflow through ``flwr run`` to completion; the
federated AUC equals centralised Taylor LR on the joined plaintext of the same split (the
run's salt); nothing left running afterwards.

Slow (~1.5 min on 2 cores): a vertical run sends ~13 + 3 x batches messages per party (here
1 epoch of 1 batch: the center's 17 columns need batches of at least 334 rows,
``protocols.vertical_lr.config.min_batch_rows``), each answered by the node's one ClientApp
runner (``fedcredit.deploy.clientapp_runner``; stock Flower would start a process per
message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedcredit.simulation.vertical import vertical_baselines
from federation.run.vertical_config import VerticalConfig

from .conftest import assert_all_stopped, launch_to_results

AUC_TOLERANCE = 0.005


@pytest.fixture(scope="module", params=["messages", "stream"])
def deployed(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One launch per LR transport: the batches as relayed Flower messages, or as frames
    through the coordinator's peer-stream relay (the nodes' policy lists its host)."""
    out = tmp_path_factory.mktemp(f"local-vertical-{request.param}") / "run"
    return launch_to_results(out, "--mode", "vertical", "--rows", "700", "--epochs", "1",
                             "--batch-size", "340", "--set", f"transport={request.param}"), out


def test_vertical_job_completes_over_tls_with_node_authentication(
    deployed: tuple[dict, Path],
) -> None:
    results, out = deployed
    deployment = results["deployment"]
    assert deployment["tls"] is True and deployment["node_auth"] is True
    assert deployment["status"] == "finished:completed"
    assert sorted(n["role"] for n in deployment["nodes"]) == ["bank", "center"]
    assert results["mode"] == "vertical" and results["epochs"] == 1
    transport = results["config"]["transport"]
    node_toml = (out / "nodes" / "bank" / "node.toml").read_text()
    assert ("peer-relay-hosts" in node_toml) is (transport == "stream")
    assert results["psi"]["intersection"] == 560  # 80 % overlap of 700 rows each
    assert results["iv"] and results["center_features"]
    assert 0 < results["federation_ready_seconds"] < results["training_started_seconds"]


def test_each_node_holds_only_its_own_file(deployed: tuple[dict, Path]) -> None:
    _, out = deployed
    for role in ("bank", "center"):
        csvs = sorted(p.name for p in (out / "nodes" / role).rglob("*.csv"))
        assert csvs == [f"{role}.csv"]
    assert not list((out / "coordinator").rglob("*.csv"))


def test_auc_equals_centralised_lr_on_the_joined_plaintext(deployed: tuple[dict, Path]) -> None:
    results, out = deployed
    cfg = VerticalConfig(bank_data=str(out / "nodes" / "bank" / "bank.csv"),
                         center_data=str(out / "nodes" / "center" / "center.csv"),
                         epochs=1, batch_size=340)
    central = vertical_baselines(cfg, results["run_id"]).centralized.auc
    gap = abs(results["federated"]["auc"] - central)
    print(f"deployed AUC {results['federated']['auc']:.6f}, centralised {central:.6f}")
    assert gap < AUC_TOLERANCE


def test_no_process_survives(deployed: tuple[dict, Path]) -> None:
    _, out = deployed
    names = {r.name for r in assert_all_stopped(out)}
    assert {"superlink", "flwr-run", "bank-0", "center"} <= names


def test_the_coordinator_works_only_with_the_two_rostered_nodes(deployed: tuple[dict, Path],
                                                                 ) -> None:
    """The launcher writes a roster of the bank's and the center's node keys and names it in
    the run config (``vertical-keys-dir``); the job completed, so the coordinator found both
    parties among the rostered nodes (``server.roster``, as in horizontal runs)."""
    _, out = deployed
    rosters = list(out.rglob("roster"))
    assert len(rosters) == 1
    assert sorted(p.name for p in rosters[0].glob("*.pub")) == ["bank-0.pub", "center.pub"]
    run_config = (out / "coordinator" / "run-config.toml").read_text()
    assert f'vertical-keys-dir = "{rosters[0].parent}"' in run_config
