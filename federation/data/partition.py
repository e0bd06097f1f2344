"""Split one data set into K simulated banks, each with its own train/test split.

Schemes: ``iid`` (uniform shuffle), ``dirichlet`` (label skew: each class is spread over banks by
proportions drawn from Dir(alpha)), ``by-column`` (banks hold consecutive quantile ranges of one
column, e.g. credit limit as a size proxy). Everything is seeded and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.errors import ConfigError

SCHEMES = ("iid", "dirichlet", "by-column")
MIN_ROWS_PER_BANK = 20


@dataclass(frozen=True)
class BankSplit:
    """Row positions (into the full table) of one bank's train and test parts."""

    bank: int
    train: np.ndarray
    test: np.ndarray


def partition_rows(
    y: np.ndarray,
    banks: int,
    scheme: str,
    *,
    seed: int,
    alpha: float = 0.5,
    column: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Assign every row to exactly one of ``banks`` banks.

    Parameters
    ----------
    y : np.ndarray
        0/1 labels (used by ``dirichlet``).
    banks : int
        Number of banks, >= 1.
    scheme : {"iid", "dirichlet", "by-column"}
    seed : int
        Seed of the assignment.
    alpha : float
        Dirichlet concentration; small = strong label skew.
    column : np.ndarray, optional
        Values of the column for ``by-column`` (NaN sorts last).

    Returns
    -------
    list of np.ndarray
        Sorted row positions per bank; disjoint, covering all rows.
    """
    n = int(len(y))
    if banks < 1:
        raise ConfigError(f"--banks must be at least 1 (got {banks}).")
    if n < banks * MIN_ROWS_PER_BANK:
        raise ConfigError(
            f"{n} rows cannot be split into {banks} banks of at least {MIN_ROWS_PER_BANK} rows; "
            "use fewer banks."
        )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), banks)
    elif scheme == "dirichlet":
        parts = _dirichlet(np.asarray(y), banks, alpha, rng)
    elif scheme == "by-column":
        if column is None:
            raise ConfigError("partition 'by-column' needs --partition-col naming a numeric column.")
        values = np.asarray(column, dtype=np.float64)
        jitter = rng.random(n)  # break ties randomly so equal values spread evenly
        order = np.lexsort((jitter, np.nan_to_num(values, nan=np.inf)))
        parts = np.array_split(order, banks)
    else:
        raise ConfigError(f"unknown partition '{scheme}'; choose one of {', '.join(SCHEMES)}.")
    return [np.sort(p) for p in parts]


def _dirichlet(y: np.ndarray, banks: int, alpha: float, rng: np.random.Generator) -> list:
    """Label-skewed split; redraws until every bank has enough rows of both classes."""
    if alpha <= 0:
        raise ConfigError(f"--alpha must be positive (got {alpha}).")
    for _ in range(200):
        parts: list[list[np.ndarray]] = [[] for _ in range(banks)]
        for label in (0, 1):
            idx = rng.permutation(np.flatnonzero(y == label))
            share = rng.dirichlet(np.full(banks, alpha))
            cuts = (np.cumsum(share)[:-1] * idx.size).astype(int)
            for b, chunk in enumerate(np.split(idx, cuts)):
                parts[b].append(chunk)
        merged = [np.concatenate(p) for p in parts]
        if all(
            m.size >= MIN_ROWS_PER_BANK and 0 < y[m].sum() < m.size and y[m].sum() >= 2
            for m in merged
        ):
            return merged
    raise ConfigError(
        f"dirichlet partition with alpha={alpha} keeps leaving a bank without enough rows of "
        "both classes; raise --alpha or use fewer banks."
    )


def train_test_split_rows(
    rows: np.ndarray, y: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of one bank's rows into train and test (seeded)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test fraction must be in (0, 1) (got {test_fraction}).")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in (0, 1):
        members = rng.permutation(rows[y[rows] == label])
        k = int(round(members.size * test_fraction))
        if members.size >= 2:
            k = min(max(k, 1), members.size - 1)
        test.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def split_banks(
    y: np.ndarray,
    banks: int,
    scheme: str,
    *,
    seed: int,
    test_fraction: float = 0.3,
    alpha: float = 0.5,
    column: np.ndarray | None = None,
) -> list[BankSplit]:
    """Partition into banks, then give each bank its own stratified train/test split."""
    parts = partition_rows(y, banks, scheme, seed=seed, alpha=alpha, column=column)
    splits = []
    for b, rows in enumerate(parts):
        train, test = train_test_split_rows(rows, y, test_fraction=test_fraction,
                                            seed=seed * 7919 + b + 1)
        splits.append(BankSplit(b, train, test))
    return splits
