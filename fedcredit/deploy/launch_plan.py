"""What a local federation runs and where its files go (no processes here).

:class:`LaunchOptions` is what the operator asked for; :class:`Layout` names every folder
under ``OUT``; :func:`run_config_values` is the run config handed to ``flwr run``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.local_parties import BankFolder
from federation.data.embedded import find_embedded
from federation.run.config import REPO_ROOT, RunConfig, resolve_data_path
from federation.run.folder import RunFolder, probe_writable

LOOPBACK = "127.0.0.1"
RUN_DEFAULTS = RunConfig()
LOCAL_DATA = "german"
"""The local launcher's default data set, embedded (small: a quick demonstration of a deployment)."""
LOCAL_TARGET = "bad"
LAUNCH_FILE = "launch.json"
LAUNCH_SCHEMA_VERSION = 1
OUT_ROOM_BYTES = 64 * 2**20
"""Free space ``OUT`` needs before a launch: bank slices, keys, logs, checkpoints."""
LINK_STATES = ("file", "memory")
"""Where the SuperLink keeps its state: ``file`` (``OUT/superlink/state.db``, SQLite: survives
a SuperLink restart) or ``memory`` (Flower's in-memory state: lost when it stops)."""
LINK_STATE_BY_MODE = {"horizontal": "file", "vertical": "memory"}
"""The default per mode: a horizontal run resumes from its checkpoint with the SuperLink's
registered nodes (``--resume``); a vertical run has no checkpoint (a stopped one starts again
from the beginning), so the file buys it nothing and costs ~1 s of SQLite work per relayed
exchange (benchmarks/RESULTS.md)."""
RUN_KEYS = ("data-path", "target", "id-col", "banks", "rounds", "aggregation", "seed",
            "keys-dir", "out", "min-banks", "round-timeout")
"""Run-config keys the launcher always sets (each must exist in pyproject's app config)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Folders of one local federation under ``out``."""

    out: Path

    @property
    def certs(self) -> Path:
        """Freshly issued certificates (CA, SuperLink, bank keys)."""
        return self.out / "certs"

    @property
    def coordinator(self) -> Path:
        """The credit center's side: keys, run config, staged app, ``flwr`` home."""
        return self.out / "coordinator"

    @property
    def coordinator_keys(self) -> Path:
        """Public key-ceremony files only (the coordinator never holds a bank's secret)."""
        return self.coordinator / "keys"

    @property
    def coordinator_run(self) -> Path:
        """Where the ServerApp writes its ``results.json``, model and audit log."""
        return self.coordinator / "run"

    @property
    def cli_home(self) -> Path:
        """``FLWR_HOME`` of the ``flwr`` CLI (its SuperLink connection)."""
        return self.coordinator / "flwr-home"

    @property
    def app(self) -> Path:
        """The staged app ``flwr run`` bundles."""
        return self.coordinator / "app"

    @property
    def release_key(self) -> Path:
        """A freshly made release key and trusted-entities file (when ``--certs`` has none)."""
        return self.out / "release-key"

    @property
    def release(self) -> Path:
        """The signed app bundle (``app.fab``, ``release.json``) the registry serves."""
        return self.coordinator / "release"

    @property
    def run_config_file(self) -> Path:
        """The ``--run-config`` TOML file."""
        return self.coordinator / "run-config.toml"

    @property
    def link_home(self) -> Path:
        """``FLWR_HOME`` of the SuperLink (installed app bundles)."""
        return self.out / "superlink" / "flwr-home"

    @property
    def link_database(self) -> Path:
        """The SuperLink's state (runs, registered node keys): survives a SuperLink restart."""
        return self.out / "superlink" / "state.db"

    @property
    def launch_file(self) -> Path:
        """``launch.json``: the options of the first launch, read back by ``--resume``."""
        return self.out / LAUNCH_FILE

    @property
    def checkpoint(self) -> Path:
        """The coordinator's last checkpoint (what ``--resume`` continues from)."""
        return RunFolder(self.coordinator_run).checkpoint

    @property
    def logs(self) -> Path:
        """One log file per process started."""
        return self.out / "logs"

    @property
    def processes(self) -> Path:
        """Every process started or seen below one, with start times (for cleanup checks)."""
        return RunFolder(self.out).processes

    def bank(self, index: int) -> BankFolder:
        """Bank ``index``'s own folder."""
        return BankFolder(index, self.out / "nodes" / f"bank-{index}")


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    """What to run.

    ``certs`` names a folder made by ``fedcredit certs`` (with ``bank-<k>`` node keys);
    without it the launcher issues fresh certificates into ``OUT/certs``; ``insecure`` runs
    without TLS and node authentication (explicit only). The banks' ``[policy]`` allows
    encrypted runs only unless ``allow_plain`` (explicit only): a plain run is refused by the
    banks otherwise. ``extra`` holds further run-config
    settings (hyphenated keys, e.g. ``{"learning-rate": 0.1}``).

    ``mode="vertical"`` runs one bank and one credit-center node instead
    (:mod:`fedcredit.deploy.vertical_federation`): ``bank_data``/``center_data`` name their
    files (both empty: a synthetic pair of ``rows`` rows per side is staged), ``epochs`` and
    ``batch_size`` the training, ``extra`` further vertical settings (e.g. ``{"l2": 0.01}``);
    ``banks``, ``data_path``, ``rounds`` and ``aggregation`` are then unused.

    ``record_wire`` has every node record its messages (``bank-<k>/wire.jsonl``), merged
    into ``OUT/wire.jsonl`` when the run ends.

    ``resume`` continues the run of a previous launch into the same ``out`` from its last
    checkpoint, with the same certificates, keys, bank folders and options
    (:func:`load_launch`).

    ``link_state`` is ``file`` or ``memory`` (:data:`LINK_STATES`); empty takes the mode's
    default (:data:`LINK_STATE_BY_MODE`; read :attr:`link_in_memory`). In memory, a resume
    registers the nodes again (the new SuperLink knows none of them).
    """

    banks: int
    out: Path
    data_path: str
    target: str
    id_col: str = ""
    rounds: int = 3
    aggregation: str = "paillier"
    seed: int = RUN_DEFAULTS.seed
    insecure: bool = False
    allow_plain: bool = False
    certs: Path | None = None
    timeout: float = 900.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "horizontal"
    bank_data: str = ""
    center_data: str = ""
    rows: int = 500
    epochs: int = 1
    batch_size: int = 128
    record_wire: bool = False
    resume: bool = False
    link_state: str = ""

    def __post_init__(self) -> None:
        if self.mode not in LINK_STATE_BY_MODE:
            raise DeploymentError(f"--mode is '{self.mode}'; choose horizontal or vertical.")
        if self.link_state and self.link_state not in LINK_STATES:
            raise DeploymentError(f"--link-state is '{self.link_state}'; choose "
                                  f"{' or '.join(LINK_STATES)}.")
        if bool(self.bank_data) != bool(self.center_data):
            raise DeploymentError("give both --bank-data and --center-data, or neither "
                                  "(a synthetic pair is staged).")
        if self.banks < 1:
            raise DeploymentError(f"--banks must be at least 1 (got {self.banks}).")
        if self.timeout <= 0:
            raise DeploymentError(f"--timeout must be positive (got {self.timeout}).")
        if self.insecure and self.certs is not None:
            raise DeploymentError("--insecure and --certs contradict each other; drop one.")

    @property
    def link_in_memory(self) -> bool:
        """Whether the SuperLink runs on in-memory state (no ``--database``)."""
        return (self.link_state or LINK_STATE_BY_MODE[self.mode]) == "memory"

    def run_config(self, layout: Layout) -> RunConfig:
        """The run's settings (validated), with the coordinator's keys and out folder."""
        extra = dict(self.extra)
        if self.mode == "vertical":  # the vertical settings are read by VerticalConfig
            known = set(RunConfig().to_user_config())
            extra = {k: v for k, v in extra.items() if k in known}
        cfg = RunConfig.from_user_config(extra)
        data_path = self.data_path if find_embedded(self.data_path) else \
            str(resolve_data_path(self.data_path).resolve())  # a name resolves in any folder
        return replace(cfg, data_path=data_path,
                       target=self.target, id_col=self.id_col, banks=self.banks,
                       rounds=self.rounds, aggregation=self.aggregation, seed=self.seed,
                       keys_dir=str(layout.coordinator_keys), out=str(layout.coordinator_run),
                       resume=self.resume)


LAUNCH_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(LaunchOptions)
                                   if f.default is not MISSING}
"""The launcher's defaults by field name (the script's options read them from here)."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_out_folder(out: Path) -> None:
    """``out`` must be new or empty (a previous run's checkpoint there would be resumed),
    writable, with room (:func:`check_writable`)."""
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        hint = (f", or continue its run with --resume {out}"
                if Layout(out).checkpoint.is_file() else "")
        raise DeploymentError(f"--out {out} is not empty; choose a new folder{hint}.")
    check_writable(out)


def check_writable(out: Path, need_bytes: int = OUT_ROOM_BYTES) -> None:
    """Create ``out`` if needed, write and remove a probe, and check its free space.

    Raises
    ------
    DeploymentError
        One line naming the folder and what to do (never a traceback).
    """
    try:
        free = probe_writable(out)
    except OSError as exc:
        what = "has no room left" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else \
            "is not writable"
        raise DeploymentError(f"--out {out} {what} ({exc.strerror or exc}); choose a folder "
                              "this user can write to.") from None
    if free < need_bytes:
        raise DeploymentError(f"--out {out} has {free / 2**20:.1f} MiB free; a launch needs "
                              f"at least {need_bytes / 2**20:.0f} MiB. Free room there or "
                              "choose another folder.")


def save_launch(options: LaunchOptions, layout: Layout) -> Path:
    """Write ``launch.json`` (the options ``--resume`` reads back), fsync'd."""
    doc: dict[str, Any] = {"v": LAUNCH_SCHEMA_VERSION}
    for f in fields(LaunchOptions):
        value = getattr(options, f.name)
        doc[f.name] = str(value) if isinstance(value, Path) else \
            dict(value) if isinstance(value, Mapping) else value
    doc["resume"] = False
    path = layout.launch_file
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def load_launch(out: Path, *, timeout: float | None = None) -> LaunchOptions:
    """The options of the launch into ``out``, set to resume its run.

    Raises
    ------
    DeploymentError
        ``out`` holds no launch, or its run wrote no checkpoint yet (one line, with what to do).
    """
    layout = Layout(out.resolve())
    if not layout.launch_file.is_file():
        raise DeploymentError(f"--resume {out}: no {LAUNCH_FILE} there; give the --out folder "
                              "of a previous launch.")
    if not layout.checkpoint.is_file():
        raise DeploymentError(f"--resume {out}: its run wrote no checkpoint (it stopped "
                              "before round 1 ended); start it afresh in a new folder.")
    try:
        doc = json.loads(layout.launch_file.read_text(encoding="utf-8"))
        if doc.pop("v", None) != LAUNCH_SCHEMA_VERSION:
            raise ValueError("unknown version")
        doc["out"] = layout.out
        doc["certs"] = Path(doc["certs"]) if doc.get("certs") else None
        options = LaunchOptions(**{**doc, "resume": True})
    except (ValueError, TypeError) as exc:
        raise DeploymentError(f"--resume {out}: {LAUNCH_FILE} is damaged ({exc}).") from None
    return replace(options, timeout=timeout) if timeout is not None else options


def resume_hint(out: Path) -> str:
    """The command that continues the run of ``out`` from its last checkpoint."""
    return f"{sys.executable} scripts/local_federation.py --resume {out.resolve()}"


def app_config_keys(app_dir: Path = REPO_ROOT) -> set[str]:
    """Keys of ``[tool.flwr.app.config]`` (Flower accepts overrides of these only)."""
    data = tomllib.loads((app_dir / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["tool"]["flwr"]["app"]["config"])


def run_config_values(cfg: RunConfig, options: LaunchOptions) -> dict[str, Any]:
    """The run config sent with ``flwr run`` (fails naming a key pyproject lacks)."""
    known = app_config_keys()
    wanted = {*RUN_KEYS, *options.extra, *(("resume",) if options.resume else ())}
    missing = sorted(k for k in wanted if k not in known)
    if missing:
        raise DeploymentError(f"pyproject.toml [tool.flwr.app.config] lacks {', '.join(missing)}"
                              "; add them (flwr run only overrides keys declared there).")
    values = cfg.to_user_config()
    return {k: values[k] for k in sorted(wanted)}
