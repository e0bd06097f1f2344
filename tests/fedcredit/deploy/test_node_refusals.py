"""A real SuperLink with TLS and node authentication refuses what it must refuse:
a node whose key was never registered, and (on the node's side) a coordinator whose
certificate does not verify against the node's CA."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedcredit.deploy.certs import CertificatePaths, CertificateRequest, write_federation_certificates
from fedcredit.deploy.flower_commands import (
    LinkSettings,
    cli_config_toml,
    flower_bin,
    runtime_env,
    superlink_command,
)
from fedcredit.deploy.launch_plan import free_port
from fedcredit.deploy.processes import ProcessSupervisor, is_running
from fedcredit.deploy.release import ReleasePaths, write_release_key
from fedcredit.deploy.tls_check import check_tls

from .conftest import REPO
from .test_node_config import write_toml


@dataclass(frozen=True)
class Link:
    address: str
    certs: CertificatePaths
    other_ca: Path
    sup: ProcessSupervisor
    root: Path


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(address: str, ca: Path) -> bool:
    try:
        check_tls(address, ca, timeout=1)
        return True
    except Exception:  # noqa: BLE001 - still booting
        return False


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Link]:
    root = tmp_path_factory.mktemp("link")
    certs = write_federation_certificates(root / "certs", CertificateRequest(
        nodes=("bank-0", "rogue")))
    other = write_federation_certificates(root / "other", CertificateRequest())
    port = free_port()
    address = f"127.0.0.1:{port}"
    (root / "cli").mkdir()
    (root / "cli" / "config.toml").write_text(cli_config_toml(address, certs.ca_cert))
    with ProcessSupervisor(root / "processes.json") as sup:
        sup.start("superlink", superlink_command(LinkSettings(
            "127.0.0.1", port, certs.ca_cert, certs.server_cert, certs.server_key)),
            env=runtime_env(root / "link-home"), log=root / "superlink.log")
        _wait(lambda: _answers(address, certs.ca_cert), 30, "the SuperLink")
        sup.start("register", [sys.executable, "-m", "fedcredit.deploy.register_nodes",
                               str(certs.node_pub("bank-0"))],
                  env=runtime_env(root / "cli"), log=root / "register.log", cwd=REPO)
        assert sup.popens["register"].wait(timeout=60) == 0, sup.log_tail("register")
        yield Link(address, certs, other.ca_cert, sup, root)
    assert not [r for r in sup.seen.values() if is_running(r)]


def _node_toml(link: Link, name: str, ca: Path, german: Path) -> Path:
    folder = link.root / name
    folder.mkdir(exist_ok=True)
    release = link.root / "release"
    trusted = ReleasePaths(release).trusted_entities
    if not trusted.exists():
        write_release_key(release)
    return write_toml(folder, {
        "node": {"role": "bank", "name": name, "bank-index": 0},
        "data": {"path": str(german), "target": "bad"},
        "keys": {"root-certificates": str(ca),
                 "auth-private-key": str(link.certs.node_key(name)),
                 "trusted-entities": str(trusted)},
        "coordinator": {"address": link.address, "rejoin-wait": 0},  # refusals, not rejoins
        "runtime": {"port": free_port()},
    })


def _start_node(link: Link, name: str, toml: Path) -> None:
    link.sup.start(name, [sys.executable, "-m", "fedcredit.deploy.node_runner", "--config",
                          str(toml)], env=runtime_env(link.root / name / "home"),
                   log=link.root / f"{name}.log", cwd=REPO)


def test_a_registered_node_is_accepted(link: Link, german: Path) -> None:
    _start_node(link, "bank-0", _node_toml(link, "bank-0", link.certs.ca_cert, german))
    log = link.root / "bank-0.log"
    _wait(lambda: "SuperNode ID" in log.read_text(), 30, "bank-0 to join")
    assert link.sup.exited("bank-0") is None
    link.sup.stop("bank-0")


def test_an_unknown_authentication_key_is_refused(link: Link, german: Path) -> None:
    _start_node(link, "rogue", _node_toml(link, "rogue", link.certs.ca_cert, german))
    _wait(lambda: link.sup.exited("rogue") is not None, 30, "the SuperLink to refuse rogue")
    assert link.sup.exited("rogue") != 0
    assert "Failed to activate SuperNode" in link.sup.log_tail("rogue", 40)
    assert "No SuperNode found with the given public key" in (
        link.root / "superlink.log").read_text()


def test_a_node_trusting_the_wrong_ca_stops_with_a_clear_tls_error(
    link: Link, german: Path,
) -> None:
    toml = _node_toml(link, "bank-0", link.other_ca, german)
    res = subprocess.run([sys.executable, "-m", "fedcredit.deploy.node_runner", "--config",
                          str(toml)], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env=runtime_env(link.root / "wrong-ca-home"))
    assert res.returncode == 2
    assert "TLS error: certificate verify failed" in res.stderr
    assert str(link.other_ca) in res.stderr and "ca.pem from the credit center" in res.stderr
    # Flower's own SuperNode, started directly, fails with a TLS error too (no endless retry).
    link.sup.start("direct", [flower_bin("flower-supernode"), "--superlink", link.address,
                              "--root-certificates", str(link.other_ca),
                              "--auth-supernode-private-key", str(link.certs.node_key("bank-0")),
                              "--port", str(free_port()), "--max-retries", "0"],
                   env=runtime_env(link.root / "direct-home"), log=link.root / "direct.log")
    _wait(lambda: link.sup.exited("direct") is not None, 30, "flower-supernode to give up")
    assert link.sup.exited("direct") != 0
    assert "CERTIFICATE_VERIFY_FAILED" in link.sup.log_tail("direct", 40)
