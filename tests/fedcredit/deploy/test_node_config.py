"""A node's TOML file: valid files load; every wrong or missing setting is named."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from fedcredit.deploy.flower_commands import flat_toml, supernode_command, toml_value
from fedcredit.deploy.node_runner import prepare_node
from federation.run.node_config import NodeConfigError, load_node_config

BASE: dict[str, dict[str, Any]] = {
    "node": {"role": "bank", "name": "bank-0", "bank-index": 0},
    "data": {"path": "bank.csv", "id-col": "ID", "target": "bad"},
    "keys": {"root-certificates": "ca.pem", "auth-private-key": "bank-0.key",
             "trusted-entities": "trusted-entities.yaml"},
    "coordinator": {"address": "center.example.org:9093"},
}


def write_toml(folder: Path, sections: dict[str, dict[str, Any]]) -> Path:
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items())
                   for name, body in sections.items())
    path = folder / "node.toml"
    path.write_text(text)
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "bank.csv").write_text("ID,amount,bad\n1,100,0\n2,200,1\n")
    (tmp_path / "ca.pem").write_text("ca")
    (tmp_path / "bank-0.key").write_text("key")
    (tmp_path / "trusted-entities.yaml").write_text('fedcredit-release: "ssh-ed25519 AAAA"\n')
    (tmp_path / "keys").mkdir()
    return tmp_path


def variant(**changes: Any) -> dict[str, dict[str, Any]]:
    """BASE with ``section__key=value`` changes (None removes the key)."""
    sections = {name: dict(body) for name, body in BASE.items()}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        key = key.replace("_", "-")
        sections.setdefault(section, {})
        if value is None:
            sections[section].pop(key, None)
        else:
            sections[section][key] = value
    return sections


def test_a_valid_bank_file_loads_with_absolute_paths(folder: Path) -> None:
    cfg = load_node_config(write_toml(folder, variant(keys__paillier_dir="keys")))
    assert cfg.role == "bank" and cfg.bank_index == 0 and cfg.coordinator.endswith(":9093")
    assert cfg.data_path == folder / "bank.csv" and cfg.paillier_dir == folder / "keys"
    assert cfg.to_flower_node_config() == {
        "role": "bank", "node-name": "bank-0", "data-path": str(folder / "bank.csv"),
        "bank-index": 0, "keys-dir": str(folder / "keys"), "id-col": "ID", "target": "bad",
        "policy-aggregation": "paillier,paillier-secagg", "policy-min-contributors": 3,
        "policy-release-model": False, "policy-short-exponents": False,
        "policy-min-key-bits": 2048}  # no [policy] table: the safe defaults, written out


def test_the_relay_hosts_of_the_policy_reach_the_node_config(folder: Path) -> None:
    """``[policy] peer-relay-hosts`` (vertical transport "stream") goes to the SuperNode as a
    ``policy-*`` key; a value that is not a list of host names stops the node, named."""
    path = write_toml(folder, BASE)
    path.write_text(path.read_text()
                    + '[policy]\npeer-relay-hosts = ["center.example.org", "10.0.0.7"]\n')
    node = load_node_config(path).to_flower_node_config()
    assert node["policy-peer-relay-hosts"] == "center.example.org,10.0.0.7"
    with pytest.raises(NodeConfigError, match="peer-relay-hosts"):
        load_node_config(write_toml(folder, variant(policy__peer_relay_hosts="10.0.0.7")))


def test_a_center_without_labels_is_accepted(folder: Path) -> None:
    cfg = load_node_config(write_toml(folder, variant(
        node__role="center", node__name="center", node__bank_index=None, data__target=None)))
    assert cfg.role == "center" and cfg.bank_index is None and cfg.target == ""
    assert "bank-index" not in cfg.to_flower_node_config()


@pytest.mark.parametrize("changes, setting", [
    ({"node__role": None}, "[node] role"),
    ({"node__role": "regulator"}, "[node] role"),
    ({"node__name": "../bank"}, "[node] name"),
    ({"node__bank_index": None}, "[node] bank-index"),
    ({"node__bank_index": -1}, "[node] bank-index"),
    ({"node__bank_index": "0"}, "[node] bank-index"),
    ({"node__role": "center", "node__name": "center"}, "[node] bank-index"),
    ({"node__role": "center", "node__bank_index": None, "data__id_col": None}, "[data] id-col"),
    ({"data__target": None}, "[data] target"),
    ({"data__target": "default"}, "[data] target"),
    ({"data__id_col": "customer"}, "[data] id-col"),
    ({"data__path": None}, "[data] path"),
    ({"data__path": "missing.csv"}, "[data] path"),
    ({"keys__root_certificates": None}, "[keys] root-certificates"),
    ({"keys__root_certificates": "nowhere.pem"}, "[keys] root-certificates"),
    ({"keys__auth_private_key": None}, "[keys] auth-private-key"),
    ({"keys__trusted_entities": None}, "[keys] trusted-entities"),
    ({"keys__paillier_dir": "no-such-folder"}, "[keys] paillier-dir"),
    ({"coordinator__address": None}, "[coordinator] address"),
    ({"coordinator__address": "center.example.org"}, "[coordinator] address"),
    ({"coordinator__address": "center:99999"}, "[coordinator] address"),
    ({"coordinator__insecure": True}, "[keys] auth-private-key"),
    ({"coordinator__insecure": "yes"}, "[coordinator] insecure"),
    ({"runtime__port": 0}, "[runtime] port"),
    ({"coordinator__max_retries": 0}, "[coordinator] max-retries"),
    ({"coordinator__max_retries": True}, "[coordinator] max-retries"),
    ({"coordinator__max_wait_time": "10m"}, "[coordinator] max-wait-time"),
    ({"coordinator__max_wait_time": -5.0}, "[coordinator] max-wait-time"),
    ({"coordinator__rejoin_wait": -1}, "[coordinator] rejoin-wait"),
    ({"data__tagret": "bad"}, "[data] tagret"),
    ({"extra__key": 1}, "[extra]"),
])
def test_each_wrong_or_missing_setting_is_named(folder: Path, changes: dict,
                                                setting: str) -> None:
    with pytest.raises(NodeConfigError) as info:
        load_node_config(write_toml(folder, variant(**changes)))
    assert setting in str(info.value)
    assert str(folder / "node.toml") in str(info.value)


def test_a_missing_or_broken_file_says_so(folder: Path) -> None:
    with pytest.raises(NodeConfigError, match="not found; pass --config"):
        load_node_config(folder / "absent.toml")
    (folder / "broken.toml").write_text("[node\nrole = 'bank'\n")
    with pytest.raises(NodeConfigError, match="not valid TOML"):
        load_node_config(folder / "broken.toml")


def test_insecure_needs_no_keys_and_starts_without_tls(folder: Path) -> None:
    cfg = load_node_config(write_toml(folder, variant(
        coordinator__insecure=True, keys__auth_private_key=None, keys__root_certificates=None)))
    argv = supernode_command(cfg, folder / "node-config.toml")
    assert "--insecure" in argv and "--auth-supernode-private-key" not in argv


def test_secure_node_command_uses_tls_auth_and_its_own_node_config(
    folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLWR_HOME", str(folder / "home"))
    launch = prepare_node(write_toml(folder, BASE), check_connection=False)
    argv = launch.argv
    assert argv[argv.index("--root-certificates") + 1] == str(folder / "ca.pem")
    assert argv[argv.index("--auth-supernode-private-key") + 1] == str(folder / "bank-0.key")
    assert "--insecure" not in argv and launch.env["FLWR_HOME"] == str(folder / "home")
    node_file = Path(argv[argv.index("--node-config") + 1])
    assert tomllib.loads(node_file.read_text())["data-path"] == str(folder / "bank.csv")


def test_flat_toml_round_trips_awkward_strings() -> None:
    values = {"data-path": 'C:\\data\\bank "A" 1.csv', "bank-index": 2, "rate": 0.5,
              "release": True}
    assert tomllib.loads(flat_toml(values)) == values


def test_cli_node_check_names_the_bad_setting(folder: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fedcredit.cli.deploy import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    path = write_toml(folder, variant(data__target="default"))
    res = CliRunner().invoke(app, ["node", "--config", str(path), "--check"])
    assert isinstance(res.exception, NodeConfigError)
    assert "'[data] target' is 'default'" in str(res.exception)


def test_cli_node_check_prints_the_banks_policy(folder: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from fedcredit.cli.deploy import register

    monkeypatch.setenv("FLWR_HOME", str(folder / "flwr-home"))
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    path = write_toml(folder, variant(keys__root_certificates=None, keys__auth_private_key=None,
                                      coordinator__insecure=True))
    res = CliRunner().invoke(app, ["node", "--config", str(path), "--check"])
    assert res.exit_code == 0, res.output
    assert ("policy: aggregation paillier, paillier-secagg; sums of >= 3 banks; release-model refused; short "
            "exponents refused; keys >= 2048 bits") in " ".join(res.output.split())


def test_the_node_retries_a_lost_coordinator_a_bounded_time(folder: Path) -> None:
    default = supernode_command(load_node_config(write_toml(folder, BASE)), folder / "n.toml")
    assert default[default.index("--max-retries") + 1] == "60"
    assert default[default.index("--max-wait-time") + 1] == "900.0"
    cfg = load_node_config(write_toml(folder, variant(
        coordinator__max_retries=5, coordinator__max_wait_time=30, coordinator__rejoin_wait=0)))
    argv = supernode_command(cfg, folder / "n.toml")
    assert argv[argv.index("--max-retries") + 1] == "5"
    assert argv[argv.index("--max-wait-time") + 1] == "30.0"
    assert cfg.rejoin_wait_s == 0.0
