"""Public settings of a vertical logistic regression run, agreed before training.

Both parties (and the coordinator, which relays it) see the config in clear: it holds
no data, only sizes, hyperparameters and the public seed of the batch schedule. The batch
size is checked against the aggregate leak of the protocol (see :mod:`protocols.vertical_lr.steps`):
a gradient over ``m`` rows reveals as many sums as the receiver has columns, so ``m`` must
be well above both parties' column counts.

First batch and the label knapsack
----------------------------------
Both parties start from zero weights, so in the first batch ``u_B = u_C = 0`` and the center's
exact gradient sum is ``S_C = 4 X_C^T d`` with ``d = 0.5 - y``: per center feature ``j`` an
integer ``sum_i xq_ij y_i`` (quantised features, ``|xq| <= 640``), a knapsack over the ``m``
labels of the batch. With few rows it has one solution (32 rows and 3 features: solved
exactly by meet-in-the-middle, ``tests/protocols/test_vertical_lr.py``). Each such sum takes
at most ``2 * 640 * m + 1`` values, so the ``k`` sums reveal at most
``k * log2(1280 m + 1)`` bits about the labels (:func:`knapsack_label_bits`). The config
requires ``m >= k * log2(1280 m + 1) + KNAPSACK_SLACK_BITS`` (:func:`min_batch_rows`,
checked by the bank before it encrypts residuals,
:meth:`VerticalLRConfig.check_label_knapsack`): then
there are at least ``2**KNAPSACK_SLACK_BITS`` times more labelings than possible
observations, so for uniformly random labels the expected number of labelings consistent
with what the center sees is at least ``2**16`` (Cauchy-Schwarz over the observation
classes). Skewed labels carry less than a bit each, so fewer remain; later batches carry
``u_B``, unknown to the center, and are not exact knapsacks.

Serialised as canonical JSON with :func:`vertical_config_to_bytes` /
:func:`vertical_config_from_bytes`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from protocols.errors import MalformedMessageError

__all__ = ["VerticalLRConfig", "MIN_BATCH_ROWS", "CONFIG_SCHEMA_VERSION", "KNAPSACK_SLACK_BITS",
           "knapsack_label_bits", "min_batch_rows", "vertical_config_to_bytes",
           "vertical_config_from_bytes"]

MIN_BATCH_ROWS = 32
#: Labelings to spare in the first batch: ``m - k * log2(1280 m + 1) >= 16``.
KNAPSACK_SLACK_BITS = 16
#: ``2 * 640 + 1`` values of one quantised feature (``FEATURE_LIMIT`` of the encoding).
_FEATURE_VALUES = 2 * 640 + 1
CONFIG_SCHEMA_VERSION = 1
CONFIG_KIND = "vertical-lr-config"
_TYPES = {"run_id": (str,), "learning_rate": (float, int), "l2": (float, int)}


def _check_types(config: VerticalLRConfig) -> None:
    for item in fields(config):
        value = getattr(config, item.name)
        expected = _TYPES.get(item.name, (int,))
        if isinstance(value, bool) or not isinstance(value, expected):
            raise TypeError(f"config field {item.name} must be {expected[0].__name__}")


def knapsack_label_bits(rows: int, n_center_features: int) -> float:
    """Most bits the exact first-batch gradient of ``rows`` rows tells about their labels.

    ``k`` integer sums ``sum_i xq_ij y_i``, each one of at most ``1280 * rows + 1`` values.
    """
    return n_center_features * math.log2((_FEATURE_VALUES - 1) * rows + 1)


def min_batch_rows(n_bank_features: int, n_center_features: int) -> int:
    """Smallest batch size the config accepts for these column counts.

    At least :data:`MIN_BATCH_ROWS`, more than twice the widest party's columns (the
    aggregate leak of every batch) and ``m - knapsack_label_bits(m, k) >=
    KNAPSACK_SLACK_BITS`` (the first batch's label knapsack stays underdetermined; the left
    side grows with ``m`` for ``m > 2 k``, so larger batches pass too).
    """
    rows = max(MIN_BATCH_ROWS, 2 * max(n_bank_features + 1, n_center_features) + 1)
    while rows - knapsack_label_bits(rows, n_center_features) < KNAPSACK_SLACK_BITS:
        rows += 1
    return rows


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

    def check_label_knapsack(self) -> None:
        """Refuse a schedule whose first batch would pin down the labels (module docstring).

        The bank calls it before it encrypts any residuals (the knapsack is over its labels);
        a config that only carries keys (SecureBoost's binning) never trains on batches.

        Raises
        ------
        ValueError
            ``batch_size < min_batch_rows(n_bank_features, n_center_features)``.
        """
        least = min_batch_rows(self.n_bank_features, self.n_center_features)
        if self.batch_size < least:
            raise ValueError(f"batch_size {self.batch_size} is too small for "
                             f"{self.n_center_features} center columns: the first batch's "
                             "gradient (zero weights) is an exact knapsack over the labels, so "
                             f"use at least {least} rows")

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
