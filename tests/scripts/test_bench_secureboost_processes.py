"""``scripts/bench_secureboost.py``: the two-process run equals the one-process run and the
joined plaintext GBDT (small rows, a small test key)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module (importable by the spawned party processes too)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("scripts.bench_secureboost")


@pytest.fixture()
def small_csv(data_dir: Path, tmp_path: Path) -> Path:
    """The first 900 rows of the UCI data."""
    lines = (data_dir / "uci_default_credit.csv").read_text().splitlines()[:901]
    path = tmp_path / "uci_small.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(bench: ModuleType, csv: Path, *extra: str) -> dict[str, object]:
    result: dict[str, object] = bench.main(["--data", str(csv), "--trees", "2", "--depth", "3",
                                            "--key-bits", "512", "--insecure-test-key", *extra])
    return result


def test_two_processes_grow_the_joined_trees(bench: ModuleType, small_csv: Path,
                                             tmp_path: Path) -> None:
    two = _run(bench, small_csv, "--json", str(tmp_path / "two.json"))
    one = _run(bench, small_csv, "--one-process")
    assert two["mode"] == "two-process" and one["mode"] == "one-process"
    assert two["same_trees_as_joined"] is True and one["same_trees_as_joined"] is True
    assert two["federated_auc"] == two["joined_plaintext_auc"] == one["federated_auc"]
    assert two["center_splits_by_column"] == one["center_splits_by_column"]
    for key in ("seconds_per_tree", "encrypt_floor_s", "row_features_per_core_s",
                "federated_auc", "joined_plaintext_auc", "critical_path_s_per_tree"):
        assert key in two
    critical, wall = two["critical_path_s_per_tree"], two["seconds_per_tree"]
    assert isinstance(critical, float) and isinstance(wall, float) and critical <= wall
    assert (tmp_path / "two.json").is_file()


def test_each_party_gets_only_its_columns(bench: ModuleType, small_csv: Path) -> None:
    split = bench.load_split(small_csv, ["AGE", "SEX"], 0)
    assert split.center_columns == ("AGE", "SEX") and split.center.x_train.shape[1] == 2
    assert split.center.y_train is None and split.center.y_test is None
    assert "AGE" not in split.bank_columns and len(split.bank_columns) == 21


def test_a_failing_step_raises_in_the_relay(bench: ModuleType, small_csv: Path) -> None:
    split = bench.load_split(small_csv, list(bench.CENTER), 0)
    config = bench.GBDTConfig(trees=1, depth=2, bins=8)
    with bench.party_processes(split, config) as (bank, _center), \
            pytest.raises(bench.PartyError, match="keygen must come first"):
        bank.call("floor")


def test_plaintext_only_needs_no_keys(bench: ModuleType, small_csv: Path) -> None:
    result = bench.main(["--data", str(small_csv), "--trees", "2", "--plaintext-only"])
    assert result["mode"] == "plaintext-only" and "seconds_per_tree" not in result
    assert result["joined_minus_bank_only"] == pytest.approx(
        float(result["joined_plaintext_auc"]) - float(result["bank_only_auc"]))
