"""Fuzz a node's TOML configuration file (``federation.run.node_config.load_node_config``)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.run.node_config import NodeConfig, load_node_config
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
VALID = """\
[node]
role = "bank"
name = "bank-0"
bank-index = 0

[data]
path = "loans.csv"
id-col = "ID"
target = "bad"

[keys]
root-certificates = "ca.pem"
auth-private-key = "bank-0.key"
trusted-entities = "trusted-entities.yaml"
paillier-dir = "keys"

[coordinator]
address = "center.example.org:9093"

[runtime]
port = 9094
"""
#: Paths a damaged file may name: files that exist, are binary, empty, folders, or odd.
PATHS = ["loans.csv", "binary.csv", "empty.csv", "ca.pem", "keys", "missing.csv", "/",
         "~no-such-user/x.csv", "a\x00b", "", ".", "../x", "loans.csv/x"]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON strings are TOML basic strings (lone surrogates: not)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return '""'


def _toml(doc: Any) -> bytes:
    if not isinstance(doc, dict):
        return _toml_value(doc).encode("utf-8", errors="surrogatepass")
    lines = []
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(section)}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()
                      if v is not None]
        elif table is not None:
            lines.append(f"{json.dumps(section)} = {_toml_value(table)}")
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


@st.composite
def _with_paths(draw: st.DrawFn, doc: dict) -> dict:
    """Point a few path settings at odd files."""
    doc = {k: dict(v) for k, v in doc.items()}
    for section, key in draw(st.lists(st.sampled_from(
            [("data", "path"), ("keys", "root-certificates"), ("keys", "auth-private-key"),
             ("keys", "paillier-dir")]), max_size=2)):
        doc[section][key] = draw(st.sampled_from(PATHS))
    return doc


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_node")
    (folder / "loans.csv").write_text("ID,bad,amount\n1,0,100\n")
    (folder / "binary.csv").write_bytes(b"\xff\xfe\x00ID,bad\n\x80\x81")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (folder / "bank-0.key").write_text("key\n")
    (folder / "trusted-entities.yaml").write_text("fedcredit-release: \"ssh-ed25519 AAAA\"\n")
    (folder / "keys").mkdir()
    assert load_node_config(_write(folder, VALID.encode())).bank_index == 0
    return folder


def _write(folder: Path, blob: bytes) -> Path:
    path = folder / "node.toml"
    path.write_bytes(blob)
    return path


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_node_config_files_raise_only_named_errors(data, fuzz, node_dir) -> None:
    doc = tomllib.loads(VALID)
    # the valid input parses (a decoder refusing everything fails here)
    assert load_node_config(_write(node_dir, VALID.encode())).bank_index == 0
    blob = data.draw(st.one_of(
        fuzz.json_docs(doc).map(_toml),
        _with_paths(doc).flatmap(lambda d: fuzz.json_docs(d).map(_toml) | st.just(_toml(d))),
        fuzz.bytes_like(VALID.encode())))
    try:
        config = load_node_config(_write(node_dir, blob))
    except FedCreditError:
        return
    assert isinstance(config, NodeConfig) and config.role in ("bank", "center")
    assert config.data_path.is_file()
