"""A simulated bank's own rows: load the data set once per process, cut out one bank's split.

In simulation every bank process can read the shared file, but each bank uses only its
partition; nothing here sends rows anywhere. Loads are cached per process (Ray actors host
several virtual banks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from federation.data.cell_errors import wire_safe
from federation.data.partition import BankSplit, split_banks
from federation.data.quality import assert_ready
from federation.data.table import CreditTable, load_credit_csv
from federation.errors import ConfigError, DataError
from federation.run.config import RunConfig, resolve_data_path

DEFAULT_SIZE_COLUMNS = ("LIMIT_BAL", "loan_amount", "credit_amount")
BANK_CACHE_SIZE = 4096
"""Banks' tables a process keeps (a Flower simulation process hosts many banks; keyed by the
whole run config, so another run or setting never gets them)."""


@dataclass(frozen=True)
class BankData:
    """One bank's train and test tables."""

    bank: int
    train: CreditTable
    test: CreditTable


@lru_cache(maxsize=4)
def _load(path: str, target: str, id_col: str, positive_label: str) -> CreditTable:
    return load_credit_csv(
        resolve_data_path(path), target=target, id_col=id_col or None,
        positive_label=positive_label or None,
    )


def load_table(cfg: RunConfig) -> CreditTable:
    """The whole data set of a simulation (cached per process)."""
    return _load(cfg.data_path, cfg.target, cfg.id_col, cfg.positive_label)


def partition_column(cfg: RunConfig, table: CreditTable) -> tuple[str, np.ndarray] | None:
    """Column used by the ``by-column`` partition: the configured one, else a size column."""
    if cfg.partition != "by-column":
        return None
    name = cfg.partition_col or next(
        (c for c in DEFAULT_SIZE_COLUMNS if c in table.numeric.columns),
        table.numeric.columns[0] if table.numeric.shape[1] else "",
    )
    if name not in table.numeric.columns:
        raise ConfigError(
            f"--partition-col '{name}' is not a numeric column of {table.source}; "
            f"numeric columns: {', '.join(table.numeric.columns)}."
        )
    return name, table.numeric[name].to_numpy()


@lru_cache(maxsize=4)
def _splits(cfg: RunConfig) -> tuple[BankSplit, ...]:
    table = load_table(cfg)
    col = partition_column(cfg, table)
    return tuple(split_banks(
        table.y, cfg.banks, cfg.partition, seed=cfg.seed, test_fraction=cfg.test_fraction,
        alpha=cfg.alpha, column=None if col is None else col[1],
    ))


def bank_splits(cfg: RunConfig) -> tuple[BankSplit, ...]:
    """Every bank's row positions for this configuration (seeded, reproducible)."""
    return _splits(cfg)


def bank_data(cfg: RunConfig, bank: int) -> BankData:
    """Bank ``bank``'s own train/test tables (cut once per process for each run config: a
    simulated bank answers every request from the same tables)."""
    if not 0 <= bank < cfg.banks:
        raise ConfigError(f"bank index {bank} is outside 0..{cfg.banks - 1}.")
    return _bank_data(cfg, bank)


@lru_cache(maxsize=BANK_CACHE_SIZE)
def _bank_data(cfg: RunConfig, bank: int) -> BankData:
    table = load_table(cfg)
    split = bank_splits(cfg)[bank]
    return BankData(bank, table.subset(split.train), table.subset(split.test))


@lru_cache(maxsize=4)
def _own_file_data(path: str, cfg: RunConfig, bank: int) -> BankData:
    table = load_credit_csv(resolve_data_path(path), target=cfg.target,
                            id_col=cfg.id_col or None, positive_label=cfg.positive_label or None)
    from federation.data.partition import train_test_split_rows

    train, test = train_test_split_rows(np.arange(table.n_rows), table.y,
                                        test_fraction=cfg.test_fraction,
                                        seed=cfg.seed * 7919 + bank + 1)
    return BankData(bank, table.subset(train), table.subset(test))


def bank_data_from_file(path: str, cfg: RunConfig, bank: int) -> BankData:
    """A deployed bank's rows: its own file, split into train/test with the run's seed, and
    through the quality gate of ``fedcredit check``.

    Raises
    ------
    DataError
        In the form that may leave the bank (:func:`~federation.data.cell_errors.wire_safe`:
        file role, column, row and rule; no cell value, no local path); the full message goes
        to the bank's own log.
    """
    try:
        data = _own_file_data(path, cfg, bank)
        assert_ready(data.train)
    except DataError as exc:
        raise wire_safe(exc, path) from None
    return data
