"""Command lines and environment for Flower 1.42's deployment engine.

One place knows the flags of ``flower-superlink``, ``flower-supernode`` and the ``flwr`` CLI,
so the launcher, ``fedcredit node`` and the docs agree. Notes on Flower 1.42:

* The SuperLink serves its Fleet, Control and Runtime APIs on one HTTPS port (``--port``).
  Its own app runtime (SuperExec, ServerApp) reaches it over loopback with the same
  certificate, which is why the certificate's SANs always include localhost/127.0.0.1.
  The Control API has no account authentication, so the SuperLink listens on loopback only
  and the banks dial the Fleet gateway (:mod:`fedcredit.deploy.fleet_gateway`), which forwards
  the Fleet calls and nothing else.
* Code origin: every SuperNode gets ``--trusted-entities`` (the federation's release key,
  :mod:`fedcredit.deploy.release`) and runs only FABs signed with it; the SuperLink fetches
  the signed release from the federation's app registry (``FLWR_SUPERGRID_API_URL``,
  :mod:`fedcredit.deploy.app_registry`) when the operator runs ``flwr run @publisher/app==v``.
* Node authentication: the SuperLink runs with ``--enable-supernode-auth``; each node's public
  key is registered with ``flwr supernode register``; the node passes its private key with
  ``--auth-supernode-private-key``. An unregistered key is refused.
* Apps run from the installed environment: the SuperLink gets
  ``--disable-runtime-dependency-installation`` (SuperNodes install nothing by default), so
  ``flwr run`` never calls ``uv`` or the network.
* The ``flwr`` CLI reads its SuperLink connections from ``$FLWR_HOME/config.toml``.
* Nodes run ``flower-supernode`` through :mod:`fedcredit.deploy.supernode_main`: on 1.42.x
  with ``--isolation process`` and one long-lived ClientApp runner instead of a process per
  message, and short growing waits instead of the SuperNode's fixed 3 s / 0.5 s sleeps.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from federation.run.node_config import NodeConfig

CONNECTION = "fedcredit"
SUPEREXEC_POLL_SECONDS = "0.2"
"""How often each SuperExec asks for new app tasks (Flower's default is 1 s)."""


def flower_bin(name: str) -> str:
    """Path of a Flower executable installed beside this Python (else the bare name)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def runtime_env(flwr_home: Path, base: Mapping[str, str] | None = None, *,
                registry: str | None = None) -> dict[str, str]:
    """Environment of a Flower process: its own ``FLWR_HOME``, no telemetry or downloads.

    ``registry`` is the app registry the SuperLink fetches signed releases from.
    """
    env = dict(os.environ if base is None else base)
    if registry is not None:
        env["FLWR_SUPERGRID_API_URL"] = registry
    bin_dir = str(Path(sys.executable).parent)
    env.update({
        "FLWR_HOME": str(flwr_home),
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": SUPEREXEC_POLL_SECONDS,
        "PYTHONUNBUFFERED": "1",
    })
    return env


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How the SuperLink listens and which certificate it shows.

    ``ca_cert``, ``server_cert`` and ``server_key`` are all None for an insecure test bed.
    """

    host: str
    port: int
    ca_cert: Path | None
    server_cert: Path | None
    server_key: Path | None
    node_auth: bool = True
    database: Path | None = None
    """SQLite file of the SuperLink's state (runs, messages, registered node keys); None keeps
    it in memory, lost when the SuperLink stops."""

    def __post_init__(self) -> None:
        given = [p is not None for p in (self.ca_cert, self.server_cert, self.server_key)]
        if any(given) and not all(given):
            raise ValueError("give the SuperLink all of ca_cert, server_cert and server_key, "
                             "or none of them (insecure).")
        if self.node_auth and not all(given):
            raise ValueError("node authentication needs TLS; give the SuperLink certificates.")

    @property
    def tls(self) -> bool:
        """Whether the SuperLink serves HTTPS."""
        return self.server_cert is not None


def superlink_command(link: LinkSettings) -> list[str]:
    """``flower-superlink`` for the coordinator (runs ServerApps from the installed env)."""
    cmd = [flower_bin("flower-superlink"), "--host", link.host, "--port", str(link.port),
           "--disable-runtime-dependency-installation"]
    if link.tls:
        cmd += ["--ssl-ca-certfile", str(link.ca_cert), "--ssl-certfile", str(link.server_cert),
                "--ssl-keyfile", str(link.server_key)]
    else:
        cmd += ["--insecure"]
    if link.node_auth:
        cmd += ["--enable-supernode-auth"]
    if link.database is not None:
        cmd += ["--database", str(link.database)]
    return cmd


def supernode_command(node: NodeConfig, node_config_file: Path) -> list[str]:
    """``flower-supernode``'s arguments for one validated node configuration, run through
    :mod:`fedcredit.deploy.supernode_main` (Flower's SuperNode with paced waits and one
    long-lived ClientApp process; stock Flower on other releases).

    ``node_config_file`` is a flat TOML file with :meth:`NodeConfig.to_flower_node_config`.
    """
    cmd = [sys.executable, "-m", "fedcredit.deploy.supernode_main", "--superlink", node.coordinator,
           "--node-config", str(node_config_file), "--port", str(node.runtime_port),
           "--max-retries", str(node.max_retries), "--max-wait-time", str(node.max_wait_s)]
    if node.insecure:
        cmd += ["--insecure"]
    else:
        cmd += ["--root-certificates", str(node.root_certificates),
                "--auth-supernode-private-key", str(node.auth_private_key)]
    if node.trusted_entities is not None:
        cmd += ["--trusted-entities", str(node.trusted_entities)]
    return cmd


def gateway_command(listen: str, superlink: str, link: LinkSettings) -> list[str]:
    """The Fleet gateway on ``listen`` in front of the loopback SuperLink at ``superlink``."""
    cmd = [sys.executable, "-m", "fedcredit.deploy.fleet_gateway", "--listen", listen,
           "--superlink", superlink]
    if link.tls:
        return cmd + ["--ca", str(link.ca_cert), "--cert", str(link.server_cert),
                      "--key", str(link.server_key)]
    return cmd + ["--insecure"]


def registry_command(port: int, releases: list[Path]) -> list[str]:
    """The app registry serving the signed ``releases`` on loopback ``port``."""
    return [sys.executable, "-m", "fedcredit.deploy.app_registry", "--port", str(port),
            *(str(r) for r in releases)]


def toml_value(value: str | int | float | bool) -> str:
    """One TOML literal (strings quoted and escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def flat_toml(values: Mapping[str, str | int | float | bool]) -> str:
    """A flat TOML document (Flower reads ``--node-config``/``--run-config`` from such files)."""
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items())


def cli_config_toml(address: str, root_certificates: Path | None) -> str:
    """``$FLWR_HOME/config.toml`` with one SuperLink connection named :data:`CONNECTION`."""
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
             f"address = {toml_value(address)}"]
    if root_certificates is None:
        lines.append("insecure = true")
    else:
        lines.append(f"root-certificates = {toml_value(str(root_certificates))}")
    return "\n".join(lines) + "\n"


def register_command(public_key: str | Path) -> list[str]:
    """``flwr supernode register`` for one node's public key."""
    return [flower_bin("flwr"), "supernode", "register", str(public_key), CONNECTION,
            "--format", "json"]


def run_command(app: Path | str, run_config_file: Path) -> list[str]:
    """``flwr run`` of ``app`` (a folder, or a signed release ``@publisher/name==version``),
    streaming its log until the run ends."""
    return [flower_bin("flwr"), "run", str(app), CONNECTION, "--run-config",
            str(run_config_file), "--stream"]


def status_command(run_id: int) -> list[str]:
    """``flwr ls`` for one run, as JSON."""
    return [flower_bin("flwr"), "ls", CONNECTION, "--run-id", str(run_id), "--format", "json"]
