"""End to end through Flower's simulation engine: ``fraction-fit`` < 1 trains each round with
the seeded sample only, the last round evaluates every bank, and results and audit say who
took part (issue 14, part 4); a sampled run stopped after round 1 and resumed draws the same
samples and ends with the same model. ``fraction-fit = 1`` is pinned by ``test_scale.py``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from server.audit import verify_audit
from server.participation import sample_banks
from server.results import coordinator_results
from server.run_state import FederatedResult


def _sampled_config(out: Path) -> RunConfig:
    return RunConfig(data_path="german", banks=6, rounds=2, fraction_fit=0.5, seed=3,
                     out=str(out))


@pytest.fixture(scope="module")
def sampled_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, FederatedResult]:
    """One uninterrupted 6-bank, 2-round run at ``fraction-fit`` 0.5 (shared by the tests)."""
    from fedcredit.simulation.horizontal import run_federation

    cfg = _sampled_config(tmp_path_factory.mktemp("sampled") / "run")
    return cfg, run_federation(cfg)


@pytest.mark.slow
def test_a_sampled_run_trains_the_sample_and_records_who_took_part(
    sampled_run: tuple[RunConfig, FederatedResult],
) -> None:
    cfg, result = sampled_run
    samples = [sample_banks(cfg, r) for r in (1, 2)]
    assert all(len(s) == 3 for s in samples)
    history = coordinator_results(cfg, result).history
    assert history is not None and [h.round for h in history] == [1, 2]
    assert [h.sampled for h in history] == samples
    assert [h.trained for h in history] == samples  # nobody dropped: every sampled bank trained
    assert [h.banks for h in history] == [3, 3]
    assert history[0].evaluated == samples[0]  # a middle round: the banks that trained
    assert history[1].evaluated == tuple(range(6))  # the last: every bank's test rows
    assert result.weights and 0.5 < history[-1].auc <= 1.0  # type: ignore[operator]

    audit = [json.loads(line) for line in RunFolder(Path(cfg.out)).audit.read_text().splitlines()]
    rounds = [r for r in audit if r["kind"] == "round"]
    assert [r["sampled"] for r in rounds] == [list(s) for s in samples]
    assert [r["banks"] for r in rounds] == [list(s) for s in samples]
    assert len(rounds[0]["received"]["train"]) == 3  # only the sample's updates were combined
    assert sorted(audit[0]["banks"]) == list(range(6))  # preprocessing keeps every bank
    assert verify_audit(Path(cfg.out)).ok


@pytest.mark.slow
def test_a_sampled_run_stopped_after_round_1_and_resumed_gives_the_same_samples_and_model(
    sampled_run: tuple[RunConfig, FederatedResult], tmp_path: Path,
) -> None:
    from fedcredit.simulation.horizontal import run_federation
    from server.checkpoint import load_checkpoint
    from server.errors import RunInterrupted

    cfg, straight = sampled_run
    out = tmp_path / "stopped"
    with pytest.raises(RunInterrupted):
        run_federation(replace(_sampled_config(out), halt_after=1))
    saved, state, _ = load_checkpoint(out)
    assert state.rounds_done == 1
    assert [p.sampled for p in state.participation] == [sample_banks(cfg, 1)]
    # the resumed coordinator no longer knows which node is which bank: it asks again
    resumed = run_federation(replace(saved, out=str(out), halt_after=0), resume=True)

    assert [p.sampled for p in resumed.participation] == \
        [p.sampled for p in straight.participation] == [sample_banks(cfg, r) for r in (1, 2)]
    assert [p.trained for p in resumed.participation] == \
        [p.trained for p in straight.participation]
    assert [p.evaluated for p in resumed.participation] == \
        [p.evaluated for p in straight.participation]
    for got, want in zip(resumed.weights, straight.weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert [(h.round, h.auc, h.ks) for h in resumed.history] == \
        [(h.round, h.auc, h.ks) for h in straight.history]
    assert verify_audit(out).ok
