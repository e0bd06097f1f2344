"""``--record-wire`` in a deployment: the bank's own node config names its transcript (the
coordinator cannot switch it on), and the launcher merges the nodes' transcripts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from clients.wire_recorder import RECORD_WIRE
from fedcredit.deploy.local_federation import LocalFederation
from fedcredit.deploy.node_runner import prepare_node
from federation.wire.transcript import merge_transcripts

from .test_node_config import BASE, write_toml


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "bank.csv").write_text("ID,amount,bad\n1,100,0\n2,200,1\n")
    (tmp_path / "ca.pem").write_text("ca")
    (tmp_path / "bank-0.key").write_text("key")
    (tmp_path / "trusted-entities.yaml").write_text('fedcredit-release: "ssh-ed25519 AAAA"\n')
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "home"))
    return tmp_path


def _node_config(argv: list[str]) -> dict:
    return tomllib.loads(Path(argv[argv.index("--node-config") + 1]).read_text())


def test_the_node_records_only_when_its_own_command_asks(folder: Path) -> None:
    plain = prepare_node(write_toml(folder, BASE), check_connection=False)
    assert RECORD_WIRE not in _node_config(plain.argv)
    recording = prepare_node(write_toml(folder, BASE), check_connection=False,
                             record_wire="wire.jsonl")
    assert _node_config(recording.argv)[RECORD_WIRE] == str(Path("wire.jsonl").resolve())


def test_the_launcher_merges_the_nodes_transcripts(tmp_path: Path) -> None:
    parts = [tmp_path / "bank-0" / "wire.jsonl", tmp_path / "bank-1" / "wire.jsonl",
             tmp_path / "bank-2" / "wire.jsonl"]
    parts[0].parent.mkdir()
    parts[0].write_text('{"a":1}\n{"a":2}\n')
    parts[1].parent.mkdir()
    parts[1].write_text('{"b":1}\n')  # bank-2 never answered: no file
    assert merge_transcripts(parts, tmp_path / "wire.jsonl") == 3
    assert (tmp_path / "wire.jsonl").read_text() == '{"a":1}\n{"a":2}\n{"b":1}\n'
    assert LocalFederation.wire_part(tmp_path / "bank-0" / "node.toml") == parts[0]
