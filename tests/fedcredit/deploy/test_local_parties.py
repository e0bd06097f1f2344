"""Each party's folder: a bank's own file reproduces its simulation split; key shares are
separated (the coordinator gets public files only)."""

from __future__ import annotations

import stat
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedcredit.deploy.app_bundle import stage_app
from fedcredit.deploy.local_parties import (
    BankFolder,
    bank_node_toml,
    distribute_keys,
    write_bank_slices,
)
from federation.data.bank_data import bank_data, bank_data_from_file
from federation.run.config import RunConfig
from federation.run.node_config import load_node_config
from federation.run.policy import PolicyRefusal, check_run_config


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_a_banks_own_file_gives_exactly_its_simulation_rows(
    tmp_path: Path, german: Path, partition: str,
) -> None:
    cfg = RunConfig(data_path=str(german), target="bad", banks=3, partition=partition, seed=4)
    banks = [BankFolder(k, tmp_path / f"bank-{k}") for k in range(3)]
    files = write_bank_slices(cfg, banks)
    assert sum(len(f.read_text().splitlines()) - 1 for f in files) == 1000
    for bank, file in zip(banks, files, strict=True):
        deployed = bank_data_from_file(str(file), cfg, bank.index)
        simulated = bank_data(cfg, bank.index)
        for part in ("train", "test"):
            a, b = getattr(deployed, part), getattr(simulated, part)
            np.testing.assert_array_equal(a.y, b.y)
            pd.testing.assert_frame_equal(a.numeric, b.numeric)
            pd.testing.assert_frame_equal(a.categorical, b.categorical)
        assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_key_shares_go_only_to_their_owner(tmp_path: Path, german: Path) -> None:
    cfg = RunConfig(data_path=str(german), target="bad", banks=3, aggregation="paillier")
    banks = [BankFolder(k, tmp_path / f"bank-{k}") for k in range(3)]
    coordinator = tmp_path / "coordinator-keys"
    distribute_keys(cfg, tmp_path / "ceremony", coordinator, banks)
    assert not (tmp_path / "ceremony").exists()
    assert all(p.is_file() for p in coordinator.iterdir())  # no bank-<k>/ folder
    assert (coordinator / "paillier.pub").exists()
    for bank in banks:
        folders = sorted(p.name for p in bank.keys.iterdir() if p.is_dir())
        assert folders == [bank.name]


def test_bank_node_toml_is_a_valid_node_configuration(tmp_path: Path, german: Path) -> None:
    cfg = RunConfig(data_path=str(german), target="bad", banks=2)
    bank = BankFolder(1, tmp_path / "bank-1")
    write_bank_slices(cfg, [BankFolder(0, tmp_path / "bank-0"), bank])
    bank.keys.mkdir()
    (tmp_path / "ca.pem").write_text("ca")
    (tmp_path / "auth.key").write_text("key")
    trusted = tmp_path / "trusted-entities.yaml"
    trusted.write_text('fedcredit-release: "ssh-ed25519 AAAA"\n')
    path = bank_node_toml(bank, cfg, coordinator="127.0.0.1:9093", runtime_port=9101,
                          ca_cert=tmp_path / "ca.pem", auth_key=tmp_path / "auth.key",
                          trusted_entities=trusted)
    node = load_node_config(path)
    assert (node.role, node.bank_index, node.runtime_port) == ("bank", 1, 9101)
    assert node.data_path == bank.data and not node.insecure
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the launcher writes the banks' [policy]: a plain run is refused unless --allow-plain
    assert node.policy.aggregation == ("paillier", "paillier-secagg")
    assert node.policy.min_contributors == 2
    with pytest.raises(PolicyRefusal, match="'aggregation' = plain"):
        check_run_config(node.policy, replace(cfg, aggregation="plain"))
    check_run_config(node.policy, replace(cfg, aggregation="paillier"))
    permissive = load_node_config(bank_node_toml(
        bank, cfg, coordinator="127.0.0.1:9093", runtime_port=9101, ca_cert=tmp_path / "ca.pem",
        auth_key=tmp_path / "auth.key", trusted_entities=trusted, allow_plain=True))
    check_run_config(permissive.policy, replace(cfg, aggregation="plain"))
    assert ("[policy]\naggregation = [\"plain\", \"paillier\", \"secagg\", "
            "\"paillier-secagg\"]") in path.read_text()


def test_the_staged_app_holds_the_sources_and_config_only(tmp_path: Path) -> None:
    app = stage_app(tmp_path / "app")
    config = tomllib.loads((app / "pyproject.toml").read_text())
    assert config["tool"]["flwr"]["app"]["components"]["serverapp"] == "server.app:app"
    assert (app / "server" / "app.py").exists() and (app / "clients" / "bank_app.py").exists()
    assert not (app / ".venv").exists() and not (app / "tests").exists()
    assert {p.suffix for p in app.rglob("*") if p.is_file()} <= {".py", ".toml", ".md", ""}
