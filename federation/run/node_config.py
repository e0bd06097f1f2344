"""One institution's node configuration: a single TOML file, validated before anything starts.

Each bank (and the credit center) runs its node from its own file and reads nothing else::

    [node]
    role = "bank"                      # "bank" or "center"
    name = "bank-0"                    # the name its authentication key was issued for
    bank-index = 0                     # banks only: its position in the run (0..K-1)

    [data]
    path = "/srv/fedcredit/loans.csv"  # this node's own rows; they never leave the machine
    id-col = "ID"                      # entity key column
    target = "bad"                     # label column (banks; the center only if it has labels)

    [keys]
    root-certificates = "/etc/fedcredit/ca.pem"      # the federation CA (public)
    auth-private-key = "/etc/fedcredit/bank-0.key"   # this node's authentication key
    paillier-dir = "/etc/fedcredit/keys"             # key-ceremony folder (encrypted runs)
    trusted-entities = "/etc/fedcredit/trusted-entities.yaml"  # release key: signed apps only

    [coordinator]
    address = "center.example.org:9093"              # the Fleet gateway, host:port
    max-retries = 60                   # optional: reconnection attempts after a lost link
    max-wait-time = 900.0              # optional: seconds of retrying before giving up
    rejoin-wait = 90.0                 # optional: seconds a restarted node waits for the
                                       # SuperLink to let its previous session go

    [runtime]                                        # optional
    port = 9094                        # local port between the SuperNode and its ClientApps

    [policy]                           # optional; what the bank accepts from the coordinator
    aggregation = ["paillier"]         # run-config aggregation modes accepted
    min-contributors = 3               # fewest banks in a sum it opens or a run needs (>= 2)
    release-model = false              # may the final model go to the coordinator?
    short-exponents = false            # vertical: short Paillier exponents allowed?
    min-key-bits = 2048                # smallest Paillier key accepted (files and runs)
    max-epsilon = 0.0                  # > 0: runs must be DP with dp-epsilon <= this
    peer-relay-hosts = []              # vertical-transport "stream": relay hosts the node
                                       # may connect to (empty: such runs are refused)

A missing ``[policy]`` table or setting takes the safe default shown above
(:data:`~federation.run.policy.DEFAULT_POLICY`); the coordinator cannot change it.

``max-retries`` and ``max-wait-time`` bound how long the SuperNode keeps dialling a coordinator
that is gone (Flower's ``--max-retries``/``--max-wait-time``; unbounded in Flower by default):
after a coordinator crash the node exits with an error instead of retrying forever, and its
service manager restarts it (docs/deployment.md). ``rejoin-wait`` is how long ``fedcredit
node`` retries when the SuperLink still holds the session of this node's previous, crashed
process (Flower 1.42 refuses the activation until two heartbeats, 60 s, are missed).

A wrong or missing setting raises :class:`NodeConfigError` naming it as ``[section] key``.
``[coordinator] insecure = true`` (no TLS, no node authentication) is for a throwaway test
bed only and must be written out explicitly.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.run.policy import DEFAULT_POLICY, TOML_KEYS, BankPolicy, PolicyError

ROLES = ("bank", "center")
DEFAULT_RUNTIME_PORT = 9094
DEFAULT_MAX_RETRIES = 60
DEFAULT_MAX_WAIT_S = 900.0
DEFAULT_REJOIN_WAIT_S = 90.0
"""Above Flower 1.42's heartbeat patience (2 missed heartbeats of 30 s) plus a margin."""
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "node": {"role": str, "name": str, "bank-index": int},
    "data": {"path": str, "id-col": str, "target": str},
    "keys": {"root-certificates": str, "auth-private-key": str, "paillier-dir": str,
             "trusted-entities": str},
    "coordinator": {"address": str, "insecure": bool, "max-retries": int,
                    "max-wait-time": (int, float), "rejoin-wait": (int, float)},
    "runtime": {"port": int},
    "policy": {"aggregation": list, "min-contributors": int, "release-model": bool,
               "short-exponents": bool, "min-key-bits": int, "max-epsilon": (int, float),
               "peer-relay-hosts": list},
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADDRESS_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


class NodeConfigError(ConfigError):
    """A node TOML file is missing, malformed, or has a wrong or missing setting."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A validated node configuration (paths are absolute).

    Attributes
    ----------
    source : Path
        The TOML file it was read from (for messages).
    role : {"bank", "center"}
    name : str
        Node name (matches its authentication key).
    bank_index : int or None
        Banks: position in the run; None for the center.
    data_path : Path
        The node's own data file.
    id_col : str
        Entity key column ("" when a bank has none).
    target : str
        Label column ("" for a center without labels).
    root_certificates, auth_private_key, paillier_dir : Path or None
        Key material; the first two are required unless ``insecure``.
    coordinator : str
        SuperLink address, ``host:port``.
    insecure : bool
        No TLS and no node authentication (explicit opt-in, test beds only).
    trusted_entities : Path or None
        Flower's trusted-entities YAML with the federation's release key: the SuperNode then
        runs only app bundles signed with it (``fedcredit release-key``). None: any bundle.
    runtime_port : int
        Local port of the SuperNode's app runtime API.
    max_retries, max_wait_s : int, float
        Bounds of the SuperNode's reconnection attempts (``[coordinator] max-retries``,
        ``max-wait-time``).
    rejoin_wait_s : float
        How long ``fedcredit node`` retries an activation the SuperLink refuses because it
        still holds this node's previous session (``[coordinator] rejoin-wait``).
    policy : BankPolicy
        What the node accepts from the coordinator (``[policy]``; safe defaults).
    """

    source: Path
    role: str
    name: str
    bank_index: int | None
    data_path: Path
    id_col: str
    target: str
    root_certificates: Path | None
    auth_private_key: Path | None
    paillier_dir: Path | None
    coordinator: str
    insecure: bool = False
    trusted_entities: Path | None = None
    runtime_port: int = DEFAULT_RUNTIME_PORT
    policy: BankPolicy = DEFAULT_POLICY
    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    rejoin_wait_s: float = DEFAULT_REJOIN_WAIT_S
    schema_version: int = 1

    def __post_init__(self) -> None:
        where = self.source
        if self.role not in ROLES:
            raise NodeConfigError(f"{where}: setting '[node] role' is '{self.role}'; choose "
                                  f"one of {', '.join(ROLES)}.")
        if not _NAME_RE.match(self.name):
            raise NodeConfigError(f"{where}: setting '[node] name' is '{self.name}'; use 1-64 "
                                  "letters, digits, '.', '_' or '-' (e.g. 'bank-0').")
        if self.role == "bank" and (self.bank_index is None or self.bank_index < 0):
            raise NodeConfigError(f"{where}: setting '[node] bank-index' must be an integer "
                                  ">= 0 for a bank (its position in the run, 0..K-1).")
        if self.role == "center" and self.bank_index is not None:
            raise NodeConfigError(f"{where}: setting '[node] bank-index' is for banks only; "
                                  "remove it from the center's file.")
        if self.role == "bank" and not self.target:
            raise NodeConfigError(f"{where}: setting '[data] target' is missing; a bank holds "
                                  "labels, name its 0/1 (bad = 1) column.")
        if self.role == "center" and not self.id_col:
            raise NodeConfigError(f"{where}: setting '[data] id-col' is missing; the center "
                                  "aligns entities by their key column.")
        for key, value in (("max-retries", self.max_retries), ("max-wait-time", self.max_wait_s),
                           ("rejoin-wait", self.rejoin_wait_s)):
            if value < 0 or (key != "rejoin-wait" and value == 0):
                raise NodeConfigError(f"{where}: setting '[coordinator] {key}' must be "
                                      f"positive (got {value}); it bounds the retries.")
        if not 0 < self.runtime_port < 65536:
            raise NodeConfigError(f"{where}: setting '[runtime] port' must be 1..65535 "
                                  f"(got {self.runtime_port}).")
        _check_security(self)

    def to_flower_node_config(self) -> dict[str, str | int]:
        """The SuperNode's ``--node-config`` (what the ClientApp sees as ``node_config``),
        the policy always written out in full."""
        values: dict[str, str | int | bool] = {"role": self.role, "node-name": self.name,
                                               "data-path": str(self.data_path),
                                               **self.policy.to_node_config()}
        if self.bank_index is not None:
            values["bank-index"] = self.bank_index
        if self.paillier_dir is not None:
            values["keys-dir"] = str(self.paillier_dir)
        if self.id_col:
            values["id-col"] = self.id_col
        if self.target:
            values["target"] = self.target
        return values


def _check_security(cfg: NodeConfig) -> None:
    where = cfg.source
    if cfg.insecure:
        if cfg.auth_private_key is not None:
            raise NodeConfigError(f"{where}: setting '[keys] auth-private-key' needs TLS, but "
                                  "'[coordinator] insecure' is true; remove one of them.")
        return
    if cfg.root_certificates is None:
        raise NodeConfigError(f"{where}: setting '[keys] root-certificates' is missing; point "
                              "it at the federation CA (ca.pem from the credit center).")
    if cfg.auth_private_key is None:
        raise NodeConfigError(f"{where}: setting '[keys] auth-private-key' is missing; create "
                              "the node's key pair with `fedcredit node-key` and register its "
                              ".pub file at the credit center.")
    if cfg.trusted_entities is None:  # fail closed: without it the node runs any app bundle
        raise NodeConfigError(f"{where}: setting '[keys] trusted-entities' is missing; point "
                              "it at the federation's trusted-entities.yaml (from `fedcredit "
                              "release-key`), so this node runs only app bundles signed by the "
                              "federation's release key.")


def load_node_config(path: str | Path) -> NodeConfig:
    """Read and validate one node TOML file.

    Parameters
    ----------
    path : path
        The node's TOML file; relative paths inside it are relative to the file's folder.

    Returns
    -------
    NodeConfig

    Raises
    ------
    NodeConfigError
        The file is missing or malformed, a setting is unknown, missing or of the wrong type,
        a referenced file does not exist, or the data file lacks a named column.
    """
    try:
        return _load_node_config(path)
    except (OSError, UnicodeDecodeError, RuntimeError, ValueError) as exc:
        raise NodeConfigError(f"node configuration {path}: a file it names cannot be read "
                              f"({type(exc).__name__}: {exc}); check the paths and that the "
                              "files are UTF-8 text.") from exc


def _load_node_config(path: str | Path) -> NodeConfig:
    source = Path(path).expanduser().resolve()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NodeConfigError(f"node configuration {source} not found; pass --config with "
                              "this institution's node TOML file.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise NodeConfigError(f"{source} is not valid TOML: {exc}.") from exc
    values = _typed_values(source, raw)
    cfg = _build(source, values)
    check_files(cfg)
    return cfg


def _typed_values(source: Path, raw: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """Flatten ``[section] key`` values, rejecting unknown names and wrong types."""
    values: dict[tuple[str, str], Any] = {}
    for section, table in raw.items():
        if section not in _SCHEMA or not isinstance(table, dict):
            raise NodeConfigError(f"{source}: unknown section '[{section}]'; sections are "
                                  f"{', '.join(f'[{s}]' for s in _SCHEMA)}.")
        for key, value in table.items():
            kind = _SCHEMA[section].get(key)
            if kind is None:
                raise NodeConfigError(f"{source}: unknown setting '[{section}] {key}'; "
                                      f"known: {', '.join(_SCHEMA[section])}.")
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                named = "number" if isinstance(kind, tuple) else kind.__name__
                raise NodeConfigError(f"{source}: setting '[{section}] {key}' must be "
                                      f"{named} (got {value!r:.40}).")
            values[(section, key)] = value
    return values


def _required(source: Path, values: Mapping[tuple[str, str], Any], section: str,
              key: str) -> Any:
    value = values.get((section, key))
    if value is None or value == "":
        raise NodeConfigError(f"{source}: setting '[{section}] {key}' is missing.")
    return value


def _path(source: Path, value: str | None) -> Path | None:
    if not value:
        return None
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (source.parent / candidate).resolve()


def _build(source: Path, values: Mapping[tuple[str, str], Any]) -> NodeConfig:
    address = str(_required(source, values, "coordinator", "address"))
    match = _ADDRESS_RE.match(address)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise NodeConfigError(f"{source}: setting '[coordinator] address' is '{address}'; "
                              "write host:port, e.g. 'center.example.org:9093'.")
    return NodeConfig(
        source=source,
        role=str(_required(source, values, "node", "role")),
        name=str(_required(source, values, "node", "name")),
        bank_index=values.get(("node", "bank-index")),
        data_path=_path(source, _required(source, values, "data", "path")) or Path(),
        id_col=values.get(("data", "id-col"), ""),
        target=values.get(("data", "target"), ""),
        root_certificates=_path(source, values.get(("keys", "root-certificates"))),
        auth_private_key=_path(source, values.get(("keys", "auth-private-key"))),
        paillier_dir=_path(source, values.get(("keys", "paillier-dir"))),
        coordinator=address,
        insecure=bool(values.get(("coordinator", "insecure"), False)),
        trusted_entities=_path(source, values.get(("keys", "trusted-entities"))),
        runtime_port=int(values.get(("runtime", "port"), DEFAULT_RUNTIME_PORT)),
        policy=_policy(source, values),
        max_retries=int(values.get(("coordinator", "max-retries"), DEFAULT_MAX_RETRIES)),
        max_wait_s=float(values.get(("coordinator", "max-wait-time"), DEFAULT_MAX_WAIT_S)),
        rejoin_wait_s=float(values.get(("coordinator", "rejoin-wait"), DEFAULT_REJOIN_WAIT_S)),
    )


def _policy(source: Path, values: Mapping[tuple[str, str], Any]) -> BankPolicy:
    """The ``[policy]`` table (missing settings: the safe defaults)."""
    table = {key: values[("policy", key)] for key in TOML_KEYS.values()
             if ("policy", key) in values}
    try:
        return BankPolicy.from_table(table)
    except PolicyError as exc:
        raise NodeConfigError(f"{source}: {exc}") from exc


def check_files(cfg: NodeConfig) -> None:
    """Every referenced file exists, and the data file has the named columns.

    Reads only the header line of the node's own data file.
    """
    files = {("data", "path"): cfg.data_path, ("keys", "root-certificates"):
             cfg.root_certificates, ("keys", "auth-private-key"): cfg.auth_private_key,
             ("keys", "trusted-entities"): cfg.trusted_entities}
    for (section, key), path in files.items():
        if path is not None and not path.is_file():
            raise NodeConfigError(f"{cfg.source}: setting '[{section}] {key}' points to "
                                  f"{path}, which is not a file.")
    if cfg.paillier_dir is not None and not cfg.paillier_dir.is_dir():
        raise NodeConfigError(f"{cfg.source}: setting '[keys] paillier-dir' points to "
                              f"{cfg.paillier_dir}, which is not a folder.")
    with cfg.data_path.open(newline="", encoding="utf-8-sig") as handle:
        header = [h.strip() for h in next(csv.reader(handle), [])]
    for key, column in (("id-col", cfg.id_col), ("target", cfg.target)):
        if column and column not in header:
            raise NodeConfigError(f"{cfg.source}: setting '[data] {key}' is '{column}', but "
                                  f"{cfg.data_path} has no such column (columns: "
                                  f"{', '.join(header[:12])}{', ...' if len(header) > 12 else ''}).")
