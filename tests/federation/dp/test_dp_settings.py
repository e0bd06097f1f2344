"""The DP settings in the run config and in Flower's run config, and ``privacy`` in
results.json (optional, round-trips, absent from older files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation.errors import ConfigError, ResultsFormatError
from federation.run.config import RunConfig
from federation.run.results import BankPrivacy, HorizontalResults, read_results


def test_dp_is_off_by_default_and_round_trips_through_flowers_run_config() -> None:
    assert RunConfig().dp_epsilon == 0.0
    cfg = RunConfig(dp_epsilon=3.0, dp_delta=1e-5, dp_clip=0.5, model="mlp")
    values = cfg.to_user_config()
    assert values["dp-epsilon"] == 3.0 and values["dp-delta"] == 1e-5 and values["dp-clip"] == 0.5
    assert RunConfig.from_user_config(values) == cfg
    assert RunConfig.from_user_config({"dp-epsilon": 1}).dp_epsilon == 1.0


@pytest.mark.parametrize(("changes", "setting"), [
    ({"dp_epsilon": -1.0}, "dp-epsilon"), ({"dp_epsilon": float("inf")}, "dp-epsilon"),
    ({"dp_epsilon": 1.0, "dp_delta": 1.5}, "dp-delta"), ({"dp_clip": 0.0}, "dp-clip"),
    ({"dp_epsilon": 1.0, "model": "gbdt", "early_stopping_rounds": 3}, "early-stopping-rounds"),
])
def test_bad_dp_settings_name_the_setting(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        RunConfig(**changes)  # type: ignore[arg-type]


PRIVACY = (BankPrivacy(bank=0, epsilon=2.97, delta=2.4e-5, noise_multiplier=1.3, clip=1.0,
                       sampling_rate=0.0305, steps=500, accountant="rdp",
                       release_noise_multiplier=8.7, histogram_noise_multiplier=4.1),
           BankPrivacy(bank=1, epsilon=2.98, delta=2.4e-5, noise_multiplier=1.31, clip=1.0,
                       sampling_rate=0.031, steps=500, accountant="rdp"))


def test_privacy_round_trips_and_older_files_read_without_it(tmp_path: Path) -> None:
    path = HorizontalResults(banks=2, model="lr", privacy=PRIVACY).write(tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert doc["privacy"][0] == {
        "bank": 0, "epsilon": 2.97, "delta": 2.4e-5, "noise_multiplier": 1.3, "clip": 1.0,
        "sampling_rate": 0.0305, "steps": 500, "accountant": "rdp",
        "release_noise_multiplier": 8.7, "histogram_noise_multiplier": 4.1}
    assert "histogram_noise_multiplier" not in doc["privacy"][1]
    assert read_results(path) == HorizontalResults(banks=2, model="lr", privacy=PRIVACY)
    plain = HorizontalResults(banks=2).write(tmp_path / "old.json")
    assert "privacy" not in json.loads(plain.read_text())
    assert HorizontalResults.read(plain).privacy is None


def test_a_mistyped_privacy_entry_names_its_field(tmp_path: Path) -> None:
    doc = json.loads(HorizontalResults(privacy=PRIVACY).to_json())
    doc["privacy"][1]["steps"] = "many"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ResultsFormatError, match=r"privacy\[1\]\.steps"):
        read_results(tmp_path / "bad.json")
