"""What the wire scanner searches for: a data file's labels, feature values and IDs.

Runs on the data owner's machine (a bank's privacy officer, or the researcher who holds every
simulated bank's file); nothing here is sent anywhere. The targets are built once per scan:

* label windows: every window of :data:`LABEL_WINDOW` consecutive labels, in file order, in ID
  order and in each party's own row order when the run folder tells how the run split the
  file (a simulation's checkpoint, a vertical run's results), packed into 64-bit keys (both
  bit orders); a window with fewer than :data:`MIN_MINORITY` of either class says nothing
  about anyone and is left out (a payload of zeros would otherwise match a run of good rows);
* feature values: each numeric column's distinctive raw values (not an integer below
  :data:`DISTINCT_FLOOR`), and its values standardised with every standardisation the run can
  have used (its released ``preprocessor.json``, each vertical party's own, the file's own),
  as float64 and float32, and rounded for text at 0..:data:`MAX_DECIMALS` decimals;
* IDs: windows of :data:`ID_WINDOW` consecutive IDs in the same orders, as int64 keys (numeric
  IDs) and as text (every ID; concatenated without separators).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from federation.data.table import CreditTable, load_credit_csv
from federation.ml.preprocess import CLIP_Z, Preprocessor, pooled_preprocessor
from federation.run.folder import RunFolder

LABEL_WINDOW = 64
MIN_MINORITY = 4
ID_WINDOW = 8
DISTINCT_FLOOR = 100.0
MAX_DECIMALS = 8
MIN_Z_DECIMALS = 3
BIT_ORDERS: tuple[Literal["big", "little"], ...] = ("big", "little")


@dataclass(frozen=True, slots=True)
class RowOrder:
    """One order in which a party holds the rows (file order, ID order, a bank's training
    rows ...): the name a finding prints and the table in that order."""

    name: str
    table: CreditTable


@dataclass(frozen=True)
class LeakTargets:
    """Everything a payload is compared with (see the module docstring)."""

    label_keys: np.ndarray  # sorted uint64: packed label windows, both bit orders
    label_orders: dict[int, str]  # key -> the order it came from (for the finding)
    feature_f64: np.ndarray  # sorted float64 values (raw distinctive + standardised)
    feature_f32: np.ndarray  # sorted float32 values
    feature_rounded: dict[int, np.ndarray]  # decimals -> sorted int64 round(v * 10**d)
    id_keys: np.ndarray  # sorted int64 numeric IDs (empty when IDs are not numbers)
    id_windows: frozenset[tuple[int, ...]]  # numeric ID windows, every order
    id_texts: frozenset[str]  # every ID as text (non-numeric IDs)
    id_concat: dict[int, frozenset[str]]  # length -> windows of IDs written without separator
    orders: tuple[str, ...] = field(default=())
    columns: tuple[str, ...] = field(default=())
    rows: int = 0
    """Rows of the data file: no count of its rows exceeds it (binary integer runs of values
    in ``0..rows`` read as counts, e.g. summed score histograms, not as feature values)."""


def pack_windows(bits: np.ndarray, width: int = LABEL_WINDOW, *,
                 bitorder: Literal["big", "little"] = "big") -> np.ndarray:
    """Every window of ``width`` (64) consecutive 0/1 values as one uint64 key."""
    if bits.size < width:
        return np.zeros(0, dtype=np.uint64)
    windows = sliding_window_view(bits.astype(np.uint8), width)
    packed = np.packbits(windows, axis=1, bitorder=bitorder)
    return np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)


def informative(bits: np.ndarray, width: int = LABEL_WINDOW) -> np.ndarray:
    """Which windows hold at least :data:`MIN_MINORITY` rows of each class."""
    if bits.size < width:
        return np.zeros(0, dtype=bool)
    ones = np.convolve(bits.astype(np.int64), np.ones(width, dtype=np.int64), mode="valid")
    return (ones >= MIN_MINORITY) & (width - ones >= MIN_MINORITY)


def _label_keys(orders: list[RowOrder]) -> tuple[np.ndarray, dict[int, str]]:
    names: dict[int, str] = {}
    for order in orders:
        if not order.table.labelled:
            continue
        y = order.table.y.astype(np.uint8)
        keep = informative(y)
        for bitorder in BIT_ORDERS:
            for key in pack_windows(y, bitorder=bitorder)[keep].tolist():
                names.setdefault(int(key), order.name)
    return np.sort(np.fromiter(names, dtype=np.uint64, count=len(names))), names


def distinctive(values: np.ndarray) -> np.ndarray:
    """Values that identify a cell: not NaN, and not an integer of magnitude below
    :data:`DISTINCT_FLOOR` (counts, flags, ages and sizes recur everywhere by chance)."""
    values = values[np.isfinite(values)]
    small_int = (np.abs(values) < DISTINCT_FLOOR) & (values == np.round(values))
    return np.unique(values[~small_int])


def standardised(table: CreditTable, prep: Preprocessor) -> list[np.ndarray]:
    """The table's numeric columns standardised by ``prep``: z and the clipped z a model
    input holds (columns ``prep`` does not know are skipped)."""
    out = []
    for col, mean, std in zip(prep.numeric, prep.means, prep.stds, strict=True):
        if col in table.numeric.columns:
            z = (table.numeric[col].to_numpy(dtype=np.float64) - mean) / std
            out.extend([z, np.clip(z, -CLIP_Z, CLIP_Z)])
    return out


def _feature_sets(table: CreditTable, preps: Iterable[Preprocessor],
                  ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    raw = np.concatenate([distinctive(table.numeric[c].to_numpy(dtype=np.float64))
                          for c in table.numeric] or [np.zeros(0)])
    zs = np.concatenate([distinctive(z) for prep in preps for z in standardised(table, prep)]
                        or [np.zeros(0)])
    f64 = np.unique(np.concatenate([raw, zs]))
    f32 = np.unique(f64.astype(np.float32))
    rounded = {}
    for decimals in range(MAX_DECIMALS + 1):
        # standardised values written with fewer than MIN_Z_DECIMALS decimals are too coarse
        # to tell from any other small number
        pool = np.concatenate([raw, zs]) if decimals >= MIN_Z_DECIMALS else raw
        scaled = np.round(pool * 10.0**decimals)
        keys = scaled[np.abs(scaled) < 2.0**62].astype(np.int64)
        if decimals:  # a value that rounds to a small integer is not distinctive text
            keys = keys[~((np.abs(keys) < DISTINCT_FLOOR * 10**decimals)
                          & (keys % 10**decimals == 0))]
        rounded[decimals] = np.unique(keys)
    return f64, f32, rounded


def _numeric_ids(ids: np.ndarray) -> np.ndarray | None:
    try:
        as_int = np.array([int(str(v)) for v in ids], dtype=np.int64)
    except (ValueError, OverflowError):
        return None
    if not all(str(int(a)) == str(v).strip() for a, v in zip(as_int[:100], ids[:100], strict=True)):
        return None
    return as_int


def _id_targets(orders: list[RowOrder]) -> tuple[np.ndarray, frozenset[tuple[int, ...]],
                                                 frozenset[str], dict[int, frozenset[str]]]:
    with_ids = [o for o in orders if o.table.ids is not None]
    if not with_ids:
        return np.zeros(0, np.int64), frozenset(), frozenset(), {}
    windows: set[tuple[int, ...]] = set()
    concat: dict[int, set[str]] = {}
    texts: set[str] = set()
    keys: list[np.ndarray] = []
    for order in with_ids:
        ids = np.asarray(order.table.ids)
        numeric = _numeric_ids(ids)
        strings = [str(v) for v in ids]
        if numeric is None:
            texts.update(strings)  # each ID is searched on its own, separators or not
            continue
        keys.append(numeric)
        if len(numeric) >= ID_WINDOW:
            windows.update(map(tuple, sliding_window_view(numeric, ID_WINDOW).tolist()))
        for start in range(max(0, len(strings) - ID_WINDOW + 1)):
            text = "".join(strings[start:start + ID_WINDOW])
            concat.setdefault(len(text), set()).add(text)
    all_keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    return (all_keys, frozenset(windows), frozenset(texts),
            {n: frozenset(s) for n, s in concat.items()})


def with_id_orders(orders: list[RowOrder]) -> list[RowOrder]:
    """``orders`` and each one's rows sorted by ID (the order a vertical protocol uses)."""
    out = list(orders)
    for order in orders:
        ids = order.table.ids
        if ids is not None and "ID order" not in order.name:
            out.append(RowOrder(f"{order.name}, ID order",
                                order.table.subset(np.argsort(ids, kind="stable"))))
    return out


def build_targets(orders: list[RowOrder], preps: list[Preprocessor]) -> LeakTargets:
    """The targets of a scan from the orders a party holds its rows in (file order first);
    each order's rows sorted by ID are added."""
    base = orders[0].table
    orders = with_id_orders(orders)
    label_keys, label_orders = _label_keys(orders)
    f64, f32, rounded = _feature_sets(base, [*preps, pooled_preprocessor([base])])
    id_keys, id_windows, id_texts, id_concat = _id_targets(orders)
    return LeakTargets(label_keys, label_orders, f64, f32, rounded, id_keys, id_windows,
                       id_texts, id_concat, tuple(o.name for o in orders),
                       tuple(base.numeric.columns), rows=int(base.n_rows))


def file_orders(table: CreditTable) -> list[RowOrder]:
    """File order (:func:`build_targets` adds ID order)."""
    return [RowOrder("file order", table)]


def load_data(path: Path, *, target: str | None, id_col: str | None) -> CreditTable:
    """The data file as the run read it (the embedded sets by name, like ``--data``)."""
    from federation.run.config import resolve_data_path

    return load_credit_csv(resolve_data_path(str(path)), target=target, id_col=id_col)


def run_preprocessors(run: Path) -> list[Preprocessor]:
    """The standardisation a horizontal run released (``preprocessor.json``), if any."""
    path = RunFolder(run).preprocessor
    try:
        return [Preprocessor.from_json(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError):
        return []
