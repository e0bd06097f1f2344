"""``fedcredit node``: validate an institution's node TOML, check TLS, become its SuperNode.

The runner reads only the node's own TOML file (and the header of its own data file), does
one TLS handshake with the coordinator using the configured CA (a wrong CA stops it here with
a clear message instead of an endless retry), writes the Flower node config, and runs
``flower-supernode`` as its child (SIGTERM, SIGINT and SIGHUP are passed on; the runner exits
with the SuperNode's status).

Rejoin after a crash (Flower 1.42): a SuperNode that stops cleanly deactivates its session at
the SuperLink; one that is killed does not, and the SuperLink keeps the session online until
two heartbeats are missed (up to 60 s). A node restarted with the same key within that window
is refused (the node prints "[code: 2004] Failed to activate SuperNode" and exits with
Flower's exit code 305; the SuperLink logs "SuperNode with node ID ... could not be
activated"). The runner then starts the SuperNode again every :data:`REJOIN_RETRY_S` seconds
for up to ``[coordinator] rejoin-wait`` seconds; once the SuperLink has let the old session go,
the node activates under its old node ID and answers the coordinator's next request. Flower
gives an unregistered key the same code, so such a node fails after ``rejoin-wait`` seconds
instead of at once.

Also runnable as ``python -m fedcredit.deploy.node_runner --config node.toml`` (the local
launcher starts its bank nodes this way).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from clients.wire_recorder import RECORD_WIRE
from fedcredit.deploy.certs import write_private
from fedcredit.deploy.flower_commands import flat_toml, runtime_env, supernode_command
from fedcredit.deploy.tls_check import check_tls
from federation.run.node_config import NodeConfig, load_node_config
from protocols.errors import FedCreditError

ACTIVATION_REFUSED = "Failed to activate SuperNode"
"""What a Flower 1.42 SuperNode prints (error code 2004) when the SuperLink refuses to activate
it: its previous session is still online, or (the same code) its key is not registered."""
CONNECTION_ERROR_EXIT = 1
"""The process exit status of a SuperNode that stops on an error: Flower 1.42 prints its exit
code (305 here) but exits with status 1."""
REJOIN_RETRY_S = 10.0


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    """Everything needed to exec one SuperNode."""

    config: NodeConfig
    argv: list[str]
    env: dict[str, str]


def flwr_home() -> Path:
    """The node's Flower home (``$FLWR_HOME``, else ``~/.flwr``)."""
    return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr")


def prepare_node(config_path: str | Path, *, check_connection: bool = True,
                 record_wire: str | Path | None = None) -> NodeLaunch:
    """Validate the TOML, probe TLS, write the Flower node config; return the command.

    ``record_wire``: the file this node appends every message it gets and sends to (the
    node's own side of ``wire.jsonl``, for ``fedcredit audit wire``); the bank decides, never
    the coordinator.

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
    values: dict[str, str | int] = dict(cfg.to_flower_node_config())
    if record_wire:
        values[RECORD_WIRE] = str(Path(record_wire).resolve())
    node_file = write_private(home / "fedcredit" / f"{cfg.name}.node-config.toml",
                              flat_toml(values).encode(), force=True)
    return NodeLaunch(cfg, supernode_command(cfg, node_file), runtime_env(home))


def run_once(launch: NodeLaunch) -> tuple[int, bool, bool]:
    """Run the SuperNode to its end, echoing its output; (status, activation refused,
    stopped by a signal to this runner).

    The SuperNode runs in its own process group: its app runtime (SuperExec) may outlive a
    SuperNode that failed to connect and keep the output pipe open, so the runner waits for
    the SuperNode itself, then ends what is left of its group.
    """
    child = subprocess.Popen(launch.argv, env=launch.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                             process_group=0)
    signalled: list[int] = []
    refused = threading.Event()

    def pump() -> None:
        for line in child.stdout or ():
            if ACTIVATION_REFUSED in line:
                refused.set()
            sys.stdout.write(line)
            sys.stdout.flush()

    def forward(signum: int, _frame: FrameType | None) -> None:
        signalled.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    reader = threading.Thread(target=pump, name="supernode-output", daemon=True)
    reader.start()
    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _end_group(child.pid)
    reader.join(timeout=5.0)
    return status, refused.is_set(), bool(signalled)


def _end_group(pgid: int) -> None:
    """SIGTERM what is left of the SuperNode's process group (it has exited)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def run_node(launch: NodeLaunch, *, retry_s: float = REJOIN_RETRY_S,
             once: Callable[[NodeLaunch], tuple[int, bool, bool]] = run_once,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> int:
    """Run the SuperNode; while the SuperLink refuses its activation because the session of
    this node's crashed predecessor is still online, start it again (see the module
    docstring) until ``rejoin_wait_s`` has passed. Returns the SuperNode's exit status."""
    deadline = clock() + launch.config.rejoin_wait_s
    while True:
        status, refused, signalled = once(launch)
        if signalled or status == 0 or not refused or clock() >= deadline:
            return status
        print(f"fedcredit node: the SuperLink still holds this node's previous session (it "
              f"lets it go after two missed heartbeats); starting again in {retry_s:.0f} s",
              flush=True)
        sleep(retry_s)


def main(argv: list[str] | None = None) -> int:
    """``python -m fedcredit.deploy.node_runner --config node.toml [--check]``."""
    parser = argparse.ArgumentParser(description="Start this institution's fedcredit node.")
    parser.add_argument("--config", required=True, help="The node's TOML file.")
    parser.add_argument("--check", action="store_true",
                        help="Validate and probe TLS, then exit without starting the node.")
    parser.add_argument("--record-wire", default=None, metavar="FILE",
                        help="Append every message this node gets and sends to FILE.")
    args = parser.parse_args(argv)
    try:
        launch = prepare_node(args.config, record_wire=args.record_wire)
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
    return run_node(launch)


if __name__ == "__main__":
    sys.exit(main())
