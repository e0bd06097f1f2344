"""Public settings of a vertical logistic regression run, agreed before training.

Both parties (and the coordinator, which relays it) see the config in clear: it holds
no data, only sizes, hyperparameters and the public seed of the batch schedule. The batch
size is checked against the aggregate leak of the protocol (see :mod:`protocols.vertical_lr.steps`):
a gradient over ``m`` rows reveals as many sums as the receiver has columns, so ``m`` must
be well above both parties' column counts.

Serialised as canonical JSON with :func:`vertical_config_to_bytes` /
:func:`vertical_config_from_bytes`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from protocols.errors import MalformedMessageError

__all__ = ["VerticalLRConfig", "MIN_BATCH_ROWS", "CONFIG_SCHEMA_VERSION",
           "vertical_config_to_bytes", "vertical_config_from_bytes"]

MIN_BATCH_ROWS = 32
CONFIG_SCHEMA_VERSION = 1
CONFIG_KIND = "vertical-lr-config"
_TYPES = {"run_id": (str,), "learning_rate": (float, int), "l2": (float, int)}


def _check_types(config: VerticalLRConfig) -> None:
    for item in fields(config):
        value = getattr(config, item.name)
        expected = _TYPES.get(item.name, (int,))
        if isinstance(value, bool) or not isinstance(value, expected):
            raise TypeError(f"config field {item.name} must be {expected[0].__name__}")


@dataclass(frozen=True, slots=True)
class VerticalLRConfig:
    """Public settings both parties agree on before training (sent once, in clear).

    ``schedule_seed`` only shuffles row positions into batches; it is public.
    ``n_bank_features`` excludes the intercept.
    """

    run_id: str
    n_rows: int
    n_bank_features: int
    n_center_features: int
    batch_size: int
    learning_rate: float
    l2: float = 0.0
    schedule_seed: int = 0
    schema_version: int = CONFIG_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_types(self)
        if self.schema_version != CONFIG_SCHEMA_VERSION:
            raise ValueError(f"config schema_version {self.schema_version} is not supported")
        widest = max(self.n_bank_features + 1, self.n_center_features)
        if self.n_bank_features < 0 or self.n_center_features < 1:
            raise ValueError("the bank needs >= 0 features and the center >= 1")
        if self.batch_size < max(MIN_BATCH_ROWS, 2 * widest + 1):
            raise ValueError(f"batch_size {self.batch_size} is too small: each gradient reveals "
                             f"{widest} sums per batch, so use at least "
                             f"{max(MIN_BATCH_ROWS, 2 * widest + 1)} rows")
        if self.n_rows < self.batch_size:
            raise ValueError(f"n_rows {self.n_rows} is smaller than batch_size")
        if not self.learning_rate > 0 or not self.l2 >= 0:
            raise ValueError("learning_rate must be > 0 and l2 >= 0")

    @property
    def n_batches(self) -> int:
        """Batches per epoch (the remainder is spread, so each has >= batch_size rows)."""
        return self.n_rows // self.batch_size

    def batch_rows(self, epoch: int, batch: int) -> np.ndarray:
        """Row positions of one batch: a public shuffle seeded by (schedule_seed, epoch)."""
        if not 0 <= batch < self.n_batches or epoch < 0:
            raise ValueError(f"batch {batch} of epoch {epoch} is outside the schedule")
        order = np.random.default_rng([self.schedule_seed, epoch]).permutation(self.n_rows)
        return np.sort(np.array_split(order, self.n_batches)[batch])


def vertical_config_to_bytes(config: VerticalLRConfig) -> bytes:
    """Canonical JSON of the config (floats round-trip exactly)."""
    return json.dumps({"kind": CONFIG_KIND, **asdict(config)}, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def vertical_config_from_bytes(data: bytes) -> VerticalLRConfig:
    """Parse :func:`vertical_config_to_bytes` output.

    Raises
    ------
    MalformedMessageError
        Unreadable, of another kind, or with invalid fields.
    """
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
        if not isinstance(doc, dict) or doc.pop("kind", None) != CONFIG_KIND:
            raise ValueError("not a vertical-lr-config document")
        return VerticalLRConfig(**doc)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        # RecursionError: absurdly nested JSON from an untrusted sender
        raise MalformedMessageError(f"invalid vertical LR config: {exc}") from exc
