"""A service's settings: one ``[service]`` TOML table that names the institution's node TOML.

``fedcredit serve --config service.toml``::

    [service]
    node-config = "bank-0.toml"        # the node TOML (federation/run/node_config.py): role,
                                       # name, own data file and id column come from there
    host = "127.0.0.1"
    port = 8081
    registry = "registry"              # model registry folder (``fedcredit models promote``)
    model = "sme-default"              # the model name served
    database = "sqlite:///queries.db"  # query log; a postgresql+psycopg:// URL works too
    api-keys = "service-keys.json"     # hashed keys of the callers (``fedcredit service-key``)
    rate-limit = 200.0                 # requests per second per calling institution
    rate-burst = 400
    max-batch-rows = 10000
    max-body-bytes = 8388608
    reload-seconds = 2.0               # how often the registry is checked for a new promotion
    tls-certificate = "bank-0.pem"     # optional: serve HTTPS
    tls-key = "bank-0-key.pem"
    # banks only
    center-url = "https://center.example.org:8082"
    center-key = "center.key"          # file holding this bank's API key at the center
    center-timeout = 2.0

Relative paths are relative to the file's folder; a relative SQLite path likewise. One source
of defaults: :class:`ServiceSettings`. A wrong setting raises :class:`ServiceConfigError`
naming it as ``[service] key``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcredit.service.errors import ServiceConfigError
from federation.run.node_config import NodeConfig, load_node_config

SECTION = "service"


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Validated service settings (paths absolute). See the module docstring for each key."""

    source: Path
    node: NodeConfig
    registry: Path
    model: str
    api_keys: Path
    host: str = "127.0.0.1"
    port: int = 8081
    database: str = ""
    rate_limit: float = 200.0
    rate_burst: int = 400
    max_batch_rows: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    reload_seconds: float = 2.0
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    center_url: str = ""
    center_key: Path | None = None
    center_timeout: float = 2.0
    schema_version: int = 1

    def __post_init__(self) -> None:
        where = f"{self.source}: setting '[{SECTION}]"
        if not 0 < self.port < 65536:
            raise ServiceConfigError(f"{where} port' must be 1..65535 (got {self.port}).")
        if self.rate_limit <= 0 or self.rate_burst < 1:
            raise ServiceConfigError(f"{where} rate-limit' and 'rate-burst' must be positive.")
        if not 1 <= self.max_batch_rows <= 1_000_000:
            raise ServiceConfigError(f"{where} max-batch-rows' must be 1..1000000.")
        if self.reload_seconds <= 0 or self.center_timeout <= 0:
            raise ServiceConfigError(f"{where} reload-seconds' and 'center-timeout' must be "
                                     "positive seconds.")
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ServiceConfigError(f"{where} tls-certificate' and 'tls-key' go together; "
                                     "set both to serve HTTPS, or neither.")
        if self.role == "bank" and (not self.center_url or self.center_key is None):
            raise ServiceConfigError(f"{where} center-url' and 'center-key' are required for a "
                                     "bank: the center's address and the file holding this "
                                     "bank's API key there.")

    @property
    def role(self) -> str:
        """``bank`` or ``center`` (from the node TOML)."""
        return self.node.role

    @property
    def institution(self) -> str:
        """This institution's node name (from the node TOML)."""
        return self.node.name

    @property
    def database_url(self) -> str:
        """The query log's SQLAlchemy URL (default: ``queries-<name>.db`` beside the file)."""
        return self.database or f"sqlite:///{self.source.parent / f'queries-{self.institution}.db'}"


_KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "node-config": ("node", str), "registry": ("registry", str), "model": ("model", str),
    "api-keys": ("api_keys", str), "host": ("host", str), "port": ("port", int),
    "database": ("database", str), "rate-limit": ("rate_limit", (int, float)),
    "rate-burst": ("rate_burst", int), "max-batch-rows": ("max_batch_rows", int),
    "max-body-bytes": ("max_body_bytes", int), "reload-seconds": ("reload_seconds", (int, float)),
    "tls-certificate": ("tls_certificate", str), "tls-key": ("tls_key", str),
    "center-url": ("center_url", str), "center-key": ("center_key", str),
    "center-timeout": ("center_timeout", (int, float)),
}
_PATHS = ("node", "registry", "api_keys", "tls_certificate", "tls_key", "center_key")
_REQUIRED = ("node-config", "registry", "model", "api-keys")


def load_service_settings(path: str | Path, **overrides: Any) -> ServiceSettings:
    """Read ``[service]`` from ``path`` and the node TOML it names.

    Parameters
    ----------
    path : path
        The service TOML file.
    **overrides
        Field values that replace the file's (the CLI's ``--port``, ``--host``).

    Raises
    ------
    ServiceConfigError
        The file is missing or malformed, a setting is unknown, missing or mistyped, or a
        file it names does not exist. NodeConfigError for the node TOML itself.
    """
    source = Path(path).expanduser().resolve()
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ServiceConfigError(f"service configuration {source} not found; pass --config "
                                 "with the institution's service TOML.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ServiceConfigError(f"{source} is not valid TOML: {exc}.") from exc
    table = raw.get(SECTION)
    if set(raw) != {SECTION} or not isinstance(table, dict):
        raise ServiceConfigError(f"{source}: expected exactly one table, '[{SECTION}]'.")
    values = _typed(source, table)
    for field in _PATHS:
        if field in values:
            values[field] = _absolute(source, values[field])
    node_file = values.pop("node")
    values.update({k: v for k, v in overrides.items() if v is not None})
    _check_files(source, values)
    settings = ServiceSettings(source=source, node=load_node_config(node_file), **values)
    return dataclasses.replace(settings, database=_absolute_sqlite(source, settings.database))


def _typed(source: Path, table: dict[str, Any]) -> dict[str, Any]:
    for key in _REQUIRED:
        if key not in table:
            raise ServiceConfigError(f"{source}: setting '[{SECTION}] {key}' is missing.")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ServiceConfigError(f"{source}: unknown setting '[{SECTION}] {key}'; known: "
                                     f"{', '.join(_KEYS)}.")
        field, kind = _KEYS[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ServiceConfigError(f"{source}: setting '[{SECTION}] {key}' has the wrong "
                                     "type; see docs/service.md for an example file.")
        values[field] = float(value) if kind == (int, float) and isinstance(value, int) else value
    return values


def _absolute(source: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (source.parent / candidate).resolve()


def _absolute_sqlite(source: Path, url: str) -> str:
    """A relative ``sqlite:///x.db`` is relative to the settings file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(source.parent / url[len(prefix):])
    return url


def _check_files(source: Path, values: dict[str, Any]) -> None:
    names = {"api_keys": "api-keys", "tls_certificate": "tls-certificate",
             "tls_key": "tls-key", "center_key": "center-key"}
    for field, key in names.items():
        path = values.get(field)
        if path is not None and not Path(path).is_file():
            raise ServiceConfigError(f"{source}: setting '[{SECTION}] {key}' points to a "
                                     "missing file; create it (docs/service.md).")
