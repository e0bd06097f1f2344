"""Fixtures of the boosted-tree tests: the UCI and German credit data as numeric matrices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@dataclass(frozen=True)
class Credit:
    """A data set as the GBDT core sees it: raw matrix, 0/1 labels, ids, feature types."""

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    n_categories: tuple[int, ...]
    columns: tuple[str, ...]


@pytest.fixture(scope="session")
def uci(data_dir: Path) -> Credit:
    """All 30,000 UCI rows: the 23 numeric features (ID dropped), target default_next_month."""
    frame = pd.read_csv(data_dir / "uci_default_credit.csv")
    y = frame.pop("default_next_month").to_numpy(dtype=np.float64)
    ids = frame.pop("ID").to_numpy(dtype=np.int64)
    numeric = [c for c in frame if pd.api.types.is_numeric_dtype(frame[c])]
    X = frame[numeric].to_numpy(dtype=np.float64)
    return Credit(X, y, ids, (0,) * len(numeric), tuple(numeric))


@pytest.fixture(scope="session")
def german(data_dir: Path) -> Credit:
    """The 1,000 German rows: text columns as category codes (sorted), target ``bad``."""
    frame = pd.read_csv(data_dir / "german_credit.csv")
    y = frame.pop("bad").to_numpy(dtype=np.float64)
    ids = frame.pop("ID").to_numpy(dtype=np.int64)
    columns, n_categories = [], []
    for name in frame:
        if pd.api.types.is_numeric_dtype(frame[name]):
            columns.append(frame[name].to_numpy(dtype=np.float64))
            n_categories.append(0)
        else:
            codes = pd.Categorical(frame[name])
            columns.append(codes.codes.astype(np.float64))
            n_categories.append(len(codes.categories))
    return Credit(np.column_stack(columns), y, ids, tuple(n_categories), tuple(frame.columns))


@pytest.fixture(scope="session")
def uci_with_missing(uci: Credit) -> Credit:
    """UCI with about 10 % of three columns set missing (NaN), to exercise default directions."""
    X = uci.X.copy()
    rng = np.random.default_rng(11)
    for column in (0, 4, 11):
        X[rng.random(X.shape[0]) < 0.1, column] = np.nan
    return Credit(X, uci.y, uci.ids, uci.n_categories, uci.columns)
