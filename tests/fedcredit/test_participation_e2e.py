"""End to end through Flower's simulation engine: ``fraction-fit`` < 1 trains each round with
the seeded sample only, the last round evaluates every bank, and results and audit say who
took part (issue 14, part 4). ``fraction-fit = 1`` is pinned by ``test_scale.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from server.audit import verify_audit
from server.participation import sample_banks
from server.results import coordinator_results


@pytest.mark.slow
def test_a_sampled_run_trains_the_sample_and_records_who_took_part(tmp_path: Path) -> None:
    from fedcredit.simulation.horizontal import run_federation

    cfg = RunConfig(data_path="german", banks=6, rounds=2, fraction_fit=0.5, seed=3,
                    out=str(tmp_path / "run"))
    result = run_federation(cfg)
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
