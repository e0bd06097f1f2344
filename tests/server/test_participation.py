"""Partial participation (issue 14, part 4): the per-round sample is seeded, reproducible and
sized by one rule; ``fraction-fit = 1`` samples every bank; refused where rounds need every
bank; who took part survives a checkpoint and reaches results.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.run.config import RunConfig, sampled_count
from federation.run.results import HorizontalResults
from server.checkpoint import load_checkpoint, save_checkpoint
from server.participation import Participation, sample_banks
from server.results import coordinator_results
from server.run_state import FederatedResult, RoundRecord


def test_the_sample_is_seeded_by_the_run_seed_and_the_round() -> None:
    cfg = RunConfig(banks=100, fraction_fit=0.1, seed=5)
    first = [sample_banks(cfg, r) for r in (1, 2, 3)]
    assert first == [sample_banks(RunConfig(banks=100, fraction_fit=0.1, seed=5), r)
                     for r in (1, 2, 3)]  # reproducible
    assert all(len(s) == len(set(s)) == 10 and list(s) == sorted(s) for s in first)
    assert all(0 <= b < 100 for s in first for b in s)
    assert len(set(first)) == 3  # a fresh draw each round
    assert sample_banks(RunConfig(banks=100, fraction_fit=0.1, seed=6), 1) != first[0]


def test_every_bank_is_drawn_about_as_often() -> None:
    cfg = RunConfig(banks=20, fraction_fit=0.25, seed=1)
    counts = [0] * 20
    for rnd in range(1, 401):
        for bank in sample_banks(cfg, rnd):
            counts[bank] += 1
    assert sum(counts) == 400 * 5
    assert min(counts) > 60 and max(counts) < 140  # expected 100 each


def test_fraction_one_samples_every_bank_and_needs_todays_replies() -> None:
    cfg = RunConfig(banks=7, seed=3)
    assert cfg.fraction_fit == 1.0 and sample_banks(cfg, 1) == tuple(range(7))
    assert cfg.sampled_banks == 7 and cfg.round_required_banks == cfg.required_banks == 5


@pytest.mark.parametrize(("banks", "fraction", "min_banks", "sampled", "required"), [
    (100, 0.1, 0, 10, 7),     # ceil(0.1 x 100) = 10 (no float drift to 11); max(3, ceil(20/3))
    (1000, 0.05, 0, 50, 34),
    (10, 0.1, 0, 3, 3),       # never below the default min-contributors (3)
    (2, 0.5, 0, 2, 2),        # nor above the banks
    (20, 0.2, 6, 6, 6),       # nor below min-banks, which then is what a round needs
    (20, 0.5, 4, 10, 4),
])
def test_the_sample_size_and_the_replies_a_round_needs(banks: int, fraction: float,
                                                       min_banks: int, sampled: int,
                                                       required: int) -> None:
    cfg = RunConfig(banks=banks, fraction_fit=fraction, min_banks=min_banks)
    assert sampled_count(banks, fraction, min_banks) == cfg.sampled_banks == sampled
    assert cfg.round_required_banks == required
    assert len(sample_banks(cfg, 4)) == sampled


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, float("nan")])
def test_a_fraction_outside_0_1_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="'fraction-fit' must be in"):
        RunConfig(fraction_fit=value)


@pytest.mark.parametrize("settings", [{"aggregation": "secagg"},
                                      {"aggregation": "paillier-secagg", "key_bits": 2048},
                                      {"model": "gbdt"}])
def test_rounds_that_need_every_bank_refuse_a_sample(settings: dict) -> None:
    with pytest.raises(ConfigError, match="fraction-fit") as caught:
        RunConfig(banks=10, fraction_fit=0.5, **settings)
    assert "\n" not in str(caught.value)
    RunConfig(banks=10, fraction_fit=1.0, **settings)  # the full federation is fine


def test_the_run_config_carries_the_setting() -> None:
    values = RunConfig(banks=10, fraction_fit=0.3).to_user_config()
    assert values["fraction-fit"] == 0.3
    assert RunConfig.from_user_config(values).fraction_fit == 0.3


def test_trained_banks_must_have_been_sampled() -> None:
    assert Participation(sampled=(3, 1), trained=(3,), evaluated=()).sampled == (1, 3)
    with pytest.raises(ValueError, match="sampled"):
        Participation(sampled=(1, 2), trained=(1, 4), evaluated=())
    with pytest.raises(ValueError, match="from 1"):
        sample_banks(RunConfig(), 0)


def test_who_took_part_survives_a_checkpoint_and_reaches_the_results(tmp_path: Path) -> None:
    cfg = RunConfig(banks=6, rounds=2, fraction_fit=0.5, out=str(tmp_path))
    who = Participation(sampled=(0, 2, 5), trained=(0, 5), evaluated=(0, 5))
    state = FederatedResult(run_id="r", rounds_done=1, round_seconds=[1.5], round_banks=[2],
                            participation=[who],
                            history=[RoundRecord(1, 0.7, 0.3, 1.5, 2, who.sampled, who.trained,
                                                 who.evaluated)])
    save_checkpoint(tmp_path, cfg, state, "0" * 64)
    loaded_cfg, loaded, _ = load_checkpoint(tmp_path)
    assert loaded_cfg.fraction_fit == 0.5
    assert loaded.participation == [who] and loaded.history == state.history
    entry = coordinator_results(cfg, loaded).history[0]  # type: ignore[index]
    assert (entry.sampled, entry.trained, entry.evaluated) == ((0, 2, 5), (0, 5), (0, 5))
    results = tmp_path / "results.json"
    coordinator_results(cfg, loaded).write(results)
    again = HorizontalResults.read(results)
    assert again.history is not None and again.history[0].sampled == (0, 2, 5)
