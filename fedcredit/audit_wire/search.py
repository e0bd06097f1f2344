"""Searching one payload for a data file's labels, feature values and IDs.

A payload is read every way a leak could have written it: as little-endian float64, float32,
int64, int32 and int8 at every byte alignment, as packed bits (both bit orders), and, when it
is text, as the numbers and digit strings in it (UTF-8, and UTF-16 of either byte order). The
decoded sequences are matched against :class:`~fedcredit.audit_wire.targets.LeakTargets`:

* labels: :data:`~fedcredit.audit_wire.targets.LABEL_WINDOW` consecutive 0/1 values equal to a
  window of the labels in one of the party's row orders;
* feature values: :data:`FEATURE_RUN` consecutive values that are all distinctive values of the
  file's numeric columns (raw or standardised), at least :data:`FEATURE_DISTINCT` of them
  different (one value recurring by chance, like a clip bound equal to a headcount, is not a
  finding);
* IDs: :data:`~fedcredit.audit_wire.targets.ID_WINDOW` consecutive IDs in one of the orders
  (numbers, or digit strings written without separators), or any one non-numeric ID in text.

Each matcher returns a short description of what matched (the encoding, the order, the rows or
columns), never the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from fedcredit.audit_wire.targets import (
    ID_WINDOW,
    LABEL_WINDOW,
    MAX_DECIMALS,
    LeakTargets,
    pack_windows,
)

FEATURE_RUN = 16
FEATURE_DISTINCT = 8
NUMERIC_VIEWS = (("float64", "<f8"), ("float32", "<f4"), ("int64", "<i8"), ("int32", "<i4"),
                 ("int8", "i1"))
# a number standing on its own: not a digit group inside hex, base64 or a word
_NUMBER = re.compile(rb"(?<![0-9A-Za-z_.])-?\d+(?:\.(\d+))?(?:[eE][-+]?\d+)?(?![0-9A-Za-z_])")
_BITS = re.compile(rb"[01]{%d,}" % LABEL_WINDOW)
_DIGITS = re.compile(rb"\d{%d,}" % (ID_WINDOW * 2))


def numeric_views(raw: bytes) -> Iterator[tuple[str, np.ndarray]]:
    """``(encoding, values)`` for every numeric dtype at every byte alignment."""
    for name, code in NUMERIC_VIEWS:
        size = np.dtype(code).itemsize
        for offset in range(size):
            usable = (len(raw) - offset) // size
            if usable < 1:
                continue
            yield name, np.frombuffer(raw, dtype=code, count=usable, offset=offset)


def member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(values, pool)`` for a sorted, duplicate-free ``pool`` of the same dtype,
    without sorting ``values`` (payloads are large, pools are built once)."""
    if pool.size == 0 or values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(pool, values), pool.size - 1)
    return np.asarray(pool[at] == values)


def runs(mask: np.ndarray, least: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of True in ``mask`` of length ``least`` or more."""
    if mask.size < least:
        return []
    edges = np.diff(np.concatenate(([0], mask.view(np.int8) if mask.dtype == bool
                                    else mask.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = stops - starts >= least
    return list(zip(starts[keep].tolist(), stops[keep].tolist(), strict=True))


def label_match(values: np.ndarray, targets: LeakTargets) -> str | None:
    """The order whose labels ``values`` holds (a window of 64), or None."""
    if targets.label_keys.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        as_float = values.astype(np.float64, copy=False)
    mask = (as_float == 0.0) | (as_float == 1.0)
    for start, stop in runs(mask, LABEL_WINDOW):
        keys = pack_windows(as_float[start:stop].astype(np.uint8))
        hit = member(keys, targets.label_keys)
        if hit.any():
            return targets.label_orders.get(int(keys[np.argmax(hit)]), "labels")
    return None


def packed_label_match(raw: bytes, targets: LeakTargets) -> str | None:
    """The order whose labels ``raw`` holds as packed bits (8 bytes = 64 labels), or None."""
    if targets.label_keys.size == 0:
        return None
    for offset in range(8):
        usable = (len(raw) - offset) // 8
        if usable < 1:
            continue
        words = np.frombuffer(raw, dtype=">u8", count=usable, offset=offset).astype(np.uint64)
        hit = member(words, targets.label_keys)
        if hit.any():
            return targets.label_orders.get(int(words[np.argmax(hit)]), "labels")
    return None


def feature_match(values: np.ndarray, targets: LeakTargets, *, single: bool,
                  counts: bool = False) -> bool:
    """Whether ``values`` holds a run of feature values (see the module docstring). With
    ``counts`` (a binary integer reading), values in ``0..targets.rows`` do not count: any
    aggregate count of the file's rows (a summed histogram bin) lies there, and in a large
    file nearly every such integer is also some cell's value."""
    if single:
        pool = targets.feature_f32
        values = values.astype(np.float32, copy=False)
    else:
        pool = targets.feature_f64
        values = values.astype(np.float64, copy=False)
    if pool.size == 0 or values.size < FEATURE_RUN:
        return False
    mask = member(values, pool)
    if counts and targets.rows:
        mask &= ~((values >= 0) & (values <= targets.rows))
    return any(np.unique(values[a:b]).size >= FEATURE_DISTINCT
               for a, b in runs(mask, FEATURE_RUN))


def id_match(values: np.ndarray, targets: LeakTargets) -> bool:
    """Whether integer ``values`` holds :data:`ID_WINDOW` consecutive IDs of some order."""
    if targets.id_keys.size == 0 or values.size < ID_WINDOW:
        return False
    with np.errstate(invalid="ignore"):
        as_int = values.astype(np.int64, copy=False)
    mask = member(as_int, targets.id_keys)
    for start, stop in runs(mask, ID_WINDOW):
        chunk = as_int[start:stop].tolist()
        if any(tuple(chunk[i:i + ID_WINDOW]) in targets.id_windows
               for i in range(len(chunk) - ID_WINDOW + 1)):
            return True
    return False


def text_forms(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """The payload as ASCII-compatible text: itself (UTF-8) and its UTF-16 readings (the
    low byte of every ASCII code unit, for either byte order)."""
    yield "UTF-8", raw
    for name, offset in (("UTF-16-LE", 0), ("UTF-16-BE", 1)):
        if len(raw) - offset < 2:
            continue
        units = np.frombuffer(raw, dtype=np.uint8, count=(len(raw) - offset) // 2 * 2,
                              offset=offset).reshape(-1, 2)
        if units.size and (units[:, 1] == 0).mean() > 0.5:
            low = np.where(units[:, 1] == 0, units[:, 0], 0).astype(np.uint8)
            yield name, low.tobytes()


def text_numbers(text: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every number written in ``text``: its value, its decimals (-1 for exponent notation)
    and its value scaled by 10**decimals (exact, from the digits)."""
    values, decimals, scaled = [], [], []
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        values.append(float(token))
        if b"e" in token.lower():
            decimals.append(-1)
            scaled.append(0)
            continue
        digits = match.group(1) or b""
        decimals.append(len(digits))
        whole = int(token.replace(b".", b"")) if len(token) < 19 else 0
        scaled.append(whole)
    return (np.asarray(values, dtype=np.float64), np.asarray(decimals, dtype=np.int64),
            np.asarray(scaled, dtype=np.int64))


def text_feature_match(values: np.ndarray, decimals: np.ndarray, scaled: np.ndarray,
                       targets: LeakTargets) -> bool:
    """Feature values written as text: in repr (exact float64) or at fixed precision."""
    if values.size < FEATURE_RUN:
        return False
    mask = member(values, targets.feature_f64)
    for d in range(MAX_DECIMALS + 1):
        at = decimals == d
        if at.any():
            mask[at] |= member(scaled[at], targets.feature_rounded[d])
    return any(np.unique(values[a:b]).size >= FEATURE_DISTINCT
               for a, b in runs(mask, FEATURE_RUN))


def text_id_match(text: bytes, targets: LeakTargets) -> bool:
    """IDs in text: a non-numeric ID anywhere, or :data:`ID_WINDOW` consecutive IDs written
    without separators."""
    if targets.id_texts:
        sizes = sorted({len(t) for t in targets.id_texts})
        alphabet = "".join(sorted({re.escape(c) for t in targets.id_texts for c in t}))
        decoded = text.decode("latin-1")
        for match in re.finditer(f"[{alphabet}]{{{sizes[0]},}}", decoded):
            token = match.group(0)
            for size in sizes:
                if any(token[i:i + size] in targets.id_texts
                       for i in range(len(token) - size + 1)):
                    return True
    if targets.id_concat:
        sizes = sorted(targets.id_concat)
        for digits in _DIGITS.finditer(text):
            token = digits.group(0).decode("ascii")
            for size in sizes:
                if size <= len(token) and any(
                        token[i:i + size] in targets.id_concat[size]
                        for i in range(len(token) - size + 1)):
                    return True
    return False


def bit_string_labels(text: bytes, targets: LeakTargets) -> str | None:
    """Labels written as a string of 0 and 1 characters."""
    for match in _BITS.finditer(text):
        found = label_match(np.frombuffer(match.group(0), dtype=np.uint8) - ord("0"), targets)
        if found:
            return found
    return None
