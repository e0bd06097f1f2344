"""Boosted trees deployed: a SuperLink and two bank SuperNodes as separate processes, TLS and
node authentication, Paillier, ``flwr run`` with ``model = "gbdt"``; the released trees equal
the simulation's of the same split node for node."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedcredit.simulation.horizontal import run_federation
from fedcredit.simulation.trees import same_trees
from federation.ml.gbdt import GBDTModel
from federation.run.config import RunConfig
from federation.run.key_store import provision_simulation_keys
from federation.steps.tree_bank import tree_model_of

from .conftest import assert_all_stopped, launch_to_results

BANKS, TREES, DEPTH, BINS, RATE = 2, 2, 2, 16, 0.3


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, german: Path) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("gbdt-federation") / "run"
    sets = ["model=gbdt", f"trees={TREES}", f"depth={DEPTH}", f"bins={BINS}",
            f"learning-rate={RATE}", "eval-every=1"]
    args = ["--banks", str(BANKS), "--data", str(german), "--target", "bad",
            "--aggregation", "paillier"]
    for item in sets:
        args += ["--set", item]
    return launch_to_results(out, *args), out


def test_deployed_trees_equal_the_simulated_trees(deployed: tuple[dict, Path], german: Path,
                                                  tmp_path: Path) -> None:
    results, out = deployed
    assert results["model"] == "gbdt" and results["deployment"]["tls"] is True
    assert [h["round"] for h in results["history"]] == list(range(1, TREES + 1))
    assert results["trees"]["trees_kept"] == TREES
    assert results["startup_seconds"] is not None  # the first train.tree_level was seen
    model = GBDTModel.from_json(Path(results["trees"]["model_file"]).read_text())
    provision_simulation_keys(tmp_path / "keys", BANKS)
    simulated = run_federation(RunConfig(
        data_path=str(german), target="bad", banks=BANKS, model="gbdt", trees=TREES,
        depth=DEPTH, bins=BINS, learning_rate=RATE, aggregation="paillier", eval_every=1,
        keys_dir=str(tmp_path / "keys"), out=str(tmp_path / "sim")))
    assert simulated.tree_release is not None
    assert same_trees(model, tree_model_of(simulated.tree_release)[0])
    assert results["federated"]["auc"] == pytest.approx(simulated.history[-1].auc, abs=1e-12)
    assert_all_stopped(out)
