"""The outsider attack of issue 12 against the launcher's SuperLink, and why it fails.

One bank node of a launched federation (TLS, node authentication, the Fleet gateway, the
release key), no run. The attacker holds only the public ``ca.pem`` and dials the address the
banks use (the Fleet gateway):

* ``flwr supernode register attacker.pub`` is refused (the Control API is not served there),
  and the SuperLink's roster still holds the bank's key only;
* ``flwr run`` of a foreign app is refused the same way, and no run exists.

Defence in depth: the same foreign app submitted on the coordinator's own loopback Control API
(an insider, or an outsider who got there) starts a run, but the bank's SuperNode refuses the
unsigned bundle: its ClientApp never runs, the reply is Flower's "FAB could not be verified".
"""

from __future__ import annotations

import json
import ssl
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fedcredit.deploy.flower_commands import CONNECTION, cli_config_toml, flower_bin, runtime_env
from fedcredit.deploy.launch_plan import LaunchOptions
from fedcredit.deploy.local_federation import JOINED, LocalFederation

NODE_JOIN_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 150.0


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """A launched federation of one bank, every process up, no run submitted."""
    out = tmp_path_factory.mktemp("outsider") / "fed"
    fed = LocalFederation(LaunchOptions(banks=1, out=out, data_path="german", target="bad",
                                        rounds=1, aggregation="plain", allow_plain=True))
    try:
        fed.prepare_coordinator()
        fed.start_superlink()
        fed.prepare_banks()
        fed.wait_for_superlink()
        fed.register_nodes()
        fed.start_nodes()
        deadline = time.monotonic() + NODE_JOIN_TIMEOUT_S
        while JOINED not in fed.sup.logs["bank-0"].read_text(errors="replace"):
            assert time.monotonic() < deadline, fed.sup.log_tail("bank-0")
            assert fed.sup.exited("bank-0") is None, fed.sup.log_tail("bank-0")
            time.sleep(0.5)
        yield fed
    finally:
        fed.sup.stop_all()


def flwr(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The ``flwr`` CLI with the connection in ``home``."""
    return subprocess.run([flower_bin("flwr"), *args], capture_output=True, text=True,
                          env=runtime_env(home), timeout=timeout, cwd=home)


@pytest.fixture(scope="module")
def attacker(federation: LocalFederation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attacker's ``flwr`` home: only ``ca.pem``, pointed at the banks' address."""
    home = tmp_path_factory.mktemp("attacker")
    assert federation.certs is not None
    ca = home / "ca.pem"
    ca.write_bytes(federation.certs.ca_cert.read_bytes())
    (home / "config.toml").write_text(cli_config_toml(federation.fleet_address, ca))
    key = ec.generate_private_key(ec.SECP384R1())
    (home / "attacker.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return home


def foreign_app(folder: Path, loot: Path) -> Path:
    """A tiny Flower app whose ClientApp hands back the node's ``data-path``."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "foreign"
        version = "1.0.0"
        dependencies = ["flwr"]

        [tool.flwr.app]
        publisher = "attacker"

        [tool.flwr.app.components]
        serverapp = "foreign_app:server"
        clientapp = "foreign_app:client"

        [tool.flwr.app.config]
        rounds = 1
        """))
    (folder / "foreign_app.py").write_text(textwrap.dedent(f"""\
        import json, time
        from pathlib import Path
        from flwr.app import ConfigRecord, Context, Message, RecordDict
        from flwr.clientapp import ClientApp
        from flwr.serverapp import Grid, ServerApp

        LOOT = Path({str(loot)!r})
        client = ClientApp()
        server = ServerApp()

        @client.query()
        def steal(msg: Message, context: Context) -> Message:
            path = str(context.node_config.get("data-path", ""))
            (LOOT / "client-ran.txt").write_text(path)
            return Message(RecordDict({{"loot": ConfigRecord({{"data-path": path}})}}),
                           reply_to=msg)

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            while not grid.get_node_ids():
                time.sleep(0.5)
            asks = [Message(RecordDict(), dst_node_id=n, message_type="query")
                    for n in grid.get_node_ids()]
            replies = [{{"error": r.error.reason if r.has_error() else None,
                         "content": None if r.has_error() else str(r.content)}}
                       for r in grid.send_and_receive(asks, timeout=90)]
            (LOOT / "replies.json").write_text(json.dumps(replies))
        """))
    return folder


def registered_keys(federation: LocalFederation) -> list[str]:
    """Ids of the SuperLink's registered nodes, as its operator sees them (loopback Control
    API)."""
    out = flwr(federation.layout.cli_home, "supernode", "ls", CONNECTION, "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    return sorted(node["node-id"] for node in json.loads(out.stdout)["nodes"])


def test_outsider_cannot_register_a_node(federation: LocalFederation, attacker: Path) -> None:
    before = registered_keys(federation)
    out = flwr(attacker, "supernode", "register", str(attacker / "attacker.pub"), CONNECTION,
               "--format", "json")
    reply = json.loads(out.stdout)  # with --format json, flwr exits 0 and says success false
    assert reply["success"] is False, reply
    assert "only the Fleet API is served here" in reply["error-message"], reply
    assert registered_keys(federation) == before
    assert len(before) == 1  # the bank's key, registered by the operator


def test_outsider_cannot_run_a_foreign_app(federation: LocalFederation, attacker: Path,
                                           tmp_path: Path) -> None:
    app = foreign_app(tmp_path / "foreign", tmp_path)
    out = flwr(attacker, "run", str(app), CONNECTION)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Successfully started run" not in out.stdout
    runs = flwr(federation.layout.cli_home, "ls", CONNECTION, "--format", "json")
    assert json.loads(runs.stdout)["runs"] == [], runs.stdout


def test_the_gateway_serves_fleet_calls_only(federation: LocalFederation) -> None:
    assert federation.certs is not None
    verify = ssl.create_default_context(cafile=str(federation.certs.ca_cert))
    with httpx.Client(verify=verify) as client:
        for path in ("/v1/control/register-node", "/v1/control/start-run",
                     "/v1/runtime/responses", "/health"):
            reply = client.post(f"https://{federation.fleet_address}{path}", content=b"")
            assert reply.status_code == 404, (path, reply.status_code)


def test_a_bank_refuses_an_unsigned_app_even_from_the_coordinator(
    federation: LocalFederation, tmp_path: Path,
) -> None:
    app = foreign_app(tmp_path / "foreign", tmp_path)
    out = flwr(federation.layout.cli_home, "run", str(app), CONNECTION, "--stream",
               timeout=RUN_TIMEOUT_S)
    assert "Successfully started run" in out.stdout, out.stdout + out.stderr
    replies = json.loads((tmp_path / "replies.json").read_text())
    assert replies and all(r["content"] is None for r in replies), replies
    assert all("could not be verified" in str(r["error"]) for r in replies), replies
    assert not (tmp_path / "client-ran.txt").exists()
    assert "could not be verified" in federation.sup.log_tail("bank-0", 80)
