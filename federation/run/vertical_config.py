"""Settings of one vertical run (bank + credit center), validated, Flower-run-config ready."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from federation.errors import ConfigError
from federation.ml.gbdt.config import GBDTConfig
from federation.run.config import VERTICAL_PREFIX, _coerce

SCHEMA_VERSION = 1
BINNINGS = ("quantile", "equal-width")
VERTICAL_MODELS = ("lr", "secureboost")
TRANSPORTS = ("messages", "stream")
"""How the LR's per-batch messages travel: each as a Flower message relayed by the coordinator,
or, per epoch, one Flower message per party and the batches as frames through the coordinator's
peer-stream relay (:mod:`server.peer_relay`)."""
DEFAULT_ENTERPRISES = 5000  # rows per party of a generated synthetic pair
DEFAULT_OVERLAP = 0.8  # share of each side's enterprises the other side also has


@dataclass(frozen=True)
class VerticalConfig:
    """Both parties see these values; paths are each party's own file (simulation: both)."""

    bank_data: str = "runs/synthetic/bank.csv"
    center_data: str = "runs/synthetic/center.csv"
    id_col: str = "uscc"
    target: str = "default"
    positive_label: str = ""
    epochs: int = 5
    batch_size: int = 1024
    learning_rate: float = 0.5
    l2: float = 1e-3
    key_bits: int = 2048
    short_exponent: bool = False
    bins: int = 10
    binning: str = "quantile"
    test_fraction: float = 0.3
    seed: int = 0
    out: str = "runs/vertical"
    model: str = "lr"
    keys_dir: str = ""
    """Deployment: the coordinator's key folder; its ``roster/`` holds the two parties' node
    keys, and the coordinator sends work to no other node (:mod:`server.roster`)."""
    trees: int = 10
    depth: int = 3
    tree_bins: int = 32
    tree_learning_rate: float = 0.3
    transport: str = "messages"
    relay_host: str = "127.0.0.1"
    """``transport = "stream"``: where the coordinator's relay listens and the parties connect
    (each node's ``[policy] peer-relay-hosts`` must list it)."""
    relay_port: int = 0
    """``transport = "stream"``: the relay's TCP port (0: a free port per epoch, for test beds;
    a deployment behind a firewall fixes one)."""
    mode: str = "vertical"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.mode != "vertical":
            raise ConfigError(f"setting 'mode' is '{self.mode}'; a vertical run needs 'vertical'.")
        for name in ("epochs", "batch_size", "learning_rate", "bins", "key_bits"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"setting '{name.replace('_', '-')}' must be positive.")
        if self.key_bits < 2048:
            raise ConfigError(f"setting 'key-bits' is {self.key_bits}; Paillier keys need at "
                              "least 2048 bits.")
        if self.binning not in BINNINGS:
            raise ConfigError(f"setting 'binning' is '{self.binning}'; choose one of "
                              f"{', '.join(BINNINGS)}.")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError("setting 'test-fraction' must be in (0, 1).")
        if self.model not in VERTICAL_MODELS:
            raise ConfigError(f"setting 'model' is '{self.model}'; a vertical run trains one of "
                              f"{', '.join(VERTICAL_MODELS)}.")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"setting 'transport' is '{self.transport}'; choose one of "
                              f"{', '.join(TRANSPORTS)}.")
        if not 0 <= self.relay_port <= 65535:
            raise ConfigError(f"setting 'relay-port' is {self.relay_port}; give a TCP port "
                              "(1-65535) or 0 for a free one.")
        if not self.relay_host or any(c in self.relay_host for c in " ,/"):
            raise ConfigError("setting 'relay-host' must be a host name or address, e.g. "
                              "127.0.0.1.")
        if self.model == "secureboost":
            self.gbdt_config()  # validates the tree settings, naming the option
        if not self.id_col:
            raise ConfigError("setting 'id-col' is empty; name the entity key column of both files.")

    def gbdt_config(self) -> GBDTConfig:
        """The boosted-tree settings of a ``model = "secureboost"`` run."""
        try:
            return GBDTConfig(trees=self.trees, depth=self.depth, bins=self.tree_bins,
                              learning_rate=self.tree_learning_rate, seed=self.seed)
        except ConfigError as exc:  # the vertical CLI names the bins option --tree-bins
            raise ConfigError(str(exc).replace("'--bins'", "'--tree-bins'").replace(
                "'--learning-rate'", "'--tree-learning-rate'")) from None

    def to_user_config(self) -> dict[str, Any]:
        """Flower run config (hyphenated keys)."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @classmethod
    def from_user_config(cls, values: Mapping[str, Any]) -> VerticalConfig:
        """Parse a Flower run config; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown vertical run-config setting '{key}'.")
            kwargs[name] = _coerce(key, value, type(getattr(cls(), name)))
        return cls(**kwargs)


def vertical_config_from_run_config(values: Mapping[str, Any]) -> VerticalConfig:
    """The :class:`VerticalConfig` in a deployed app's run config (its ``vertical-*`` keys).

    Other keys (the horizontal settings, ``mode``) are ignored; an unknown ``vertical-*`` key
    is an error naming it.
    """
    picked = {str(k)[len(VERTICAL_PREFIX):]: v for k, v in values.items()
              if str(k).startswith(VERTICAL_PREFIX)}
    try:
        return VerticalConfig.from_user_config(picked)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (deployed run configs prefix vertical settings with "
                          f"'{VERTICAL_PREFIX}')") from exc


def vertical_run_config(cfg: VerticalConfig) -> dict[str, Any]:
    """``mode = "vertical"`` plus ``cfg`` as ``vertical-*`` keys (for ``flwr run``)."""
    values = {f"{VERTICAL_PREFIX}{k}": v for k, v in cfg.to_user_config().items()
              if k not in ("mode", "schema-version")}
    return {"mode": "vertical", **values}
