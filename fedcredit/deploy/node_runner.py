"""``fedcredit node``: validate an institution's node TOML, check TLS, become its SuperNode.

The runner reads only the node's own TOML file (and the header of its own data file), does
one TLS handshake with the coordinator using the configured CA (a wrong CA stops it here with
a clear message instead of an endless retry), writes the Flower node config, and replaces
itself with ``flower-supernode`` (same PID, so signals reach Flower directly).

Also runnable as ``python -m fedcredit.deploy.node_runner --config node.toml`` (the local
launcher starts its bank nodes this way).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from fedcredit.deploy.certs import write_private
from fedcredit.deploy.flower_commands import flat_toml, runtime_env, supernode_command
from fedcredit.deploy.tls_check import check_tls
from federation.run.node_config import NodeConfig, load_node_config
from protocols.errors import FedCreditError


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    """Everything needed to exec one SuperNode."""

    config: NodeConfig
    argv: list[str]
    env: dict[str, str]


def flwr_home() -> Path:
    """The node's Flower home (``$FLWR_HOME``, else ``~/.flwr``)."""
    return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr")


def prepare_node(config_path: str | Path, *, check_connection: bool = True) -> NodeLaunch:
    """Validate the TOML, probe TLS, write the Flower node config; return the command.

    Raises
    ------
    NodeConfigError
        A setting is wrong or missing (the message names it).
    TLSHandshakeError
        The coordinator's certificate does not verify against the configured CA.
    """
    cfg = load_node_config(config_path)
    if check_connection and not cfg.insecure:
        check_tls(cfg.coordinator, str(cfg.root_certificates))
    home = flwr_home()
    node_file = write_private(home / "fedcredit" / f"{cfg.name}.node-config.toml",
                              flat_toml(cfg.to_flower_node_config()).encode(), force=True)
    return NodeLaunch(cfg, supernode_command(cfg, node_file), runtime_env(home))


def exec_node(launch: NodeLaunch) -> None:
    """Replace this process with the SuperNode (never returns)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(launch.argv[0], launch.argv, launch.env)


def main(argv: list[str] | None = None) -> int:
    """``python -m fedcredit.deploy.node_runner --config node.toml [--check]``."""
    parser = argparse.ArgumentParser(description="Start this institution's fedcredit node.")
    parser.add_argument("--config", required=True, help="The node's TOML file.")
    parser.add_argument("--check", action="store_true",
                        help="Validate and probe TLS, then exit without starting the node.")
    args = parser.parse_args(argv)
    try:
        launch = prepare_node(args.config)
    except FedCreditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    role = f"{launch.config.role} {launch.config.name}"
    print(f"fedcredit node: {role} -> {launch.config.coordinator} "
          f"({'INSECURE, no TLS' if launch.config.insecure else 'TLS + node authentication'})",
          flush=True)
    if launch.config.trusted_entities is None:
        print("WARNING: no '[keys] trusted-entities': this node runs any app bundle the "
              "coordinator sends; set it to the federation's trusted-entities.yaml.", flush=True)
    if args.check:
        return 0
    exec_node(launch)
    return 0  # unreachable


if __name__ == "__main__":
    sys.exit(main())
