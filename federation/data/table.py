"""Load and validate a credit CSV with a binary target.

The loader runs on the node that owns the file. It never sends rows anywhere; it only turns a
file into a validated :class:`CreditTable` (numeric columns, categorical columns, optional IDs,
0/1 labels) or raises :class:`DataError` with one line naming the file, column and row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.cell_errors import CellError, row_ref
from federation.data.embedded import embedded_file, find_embedded, known_names, read_bytes, source_name
from federation.errors import DataError, SchemaError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "?"})
NUMERIC_MISSING_TOKENS = MISSING_TOKENS | {"none", "missing"}
"""In a numeric column these words mean 'missing' too; in a text column 'none' is a category."""
POSITIVE_TOKENS = frozenset(
    {"1", "bad", "default", "defaulted", "yes", "y", "true", "t", "charged off", "delinquent"}
)
NEGATIVE_TOKENS = frozenset({"0", "good", "no", "n", "false", "f", "paid", "fully paid", "current"})
ID_NAMES = frozenset({"id", "uscc", "unified_social_credit_code"})
"""Column names taken as the entity key when no --id-col is given."""
NUMERIC_SHARE_FOR_TYPO = 0.9
"""A column whose non-missing values are at least this share numbers is numeric; any other
value in it is reported as an error (a typo), not silently turned into a category."""


@dataclass(frozen=True)
class CreditTable:
    """One party's validated rows. Learned from the file; never leaves the node.

    Attributes
    ----------
    source : str
        Path of the file the rows came from (for messages).
    target : str
        Name of the target column.
    y : np.ndarray
        Labels, int8, 1 = bad.
    numeric : pd.DataFrame
        Numeric feature columns, float64, NaN where missing.
    categorical : pd.DataFrame
        Categorical feature columns, str, None where missing.
    ids : np.ndarray | None
        Entity keys (str) when the file has an ID column.
    dropped : tuple of str
        Text columns ignored because every value is distinct (identifiers, free text).
    labelled : bool
        False for a party without labels (the credit center); ``y`` is then all zeros.
    """

    source: str
    target: str
    y: np.ndarray
    numeric: pd.DataFrame
    categorical: pd.DataFrame
    ids: np.ndarray | None = None
    dropped: tuple[str, ...] = ()
    labelled: bool = True

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    def subset(self, rows: np.ndarray) -> CreditTable:
        """Rows selected by integer positions, as a new table."""
        rows = np.asarray(rows, dtype=np.int64)
        return CreditTable(
            source=self.source,
            target=self.target,
            y=self.y[rows],
            numeric=self.numeric.iloc[rows].reset_index(drop=True),
            categorical=self.categorical.iloc[rows].reset_index(drop=True),
            ids=None if self.ids is None else self.ids[rows],
            dropped=self.dropped,
            labelled=self.labelled,
        )


def load_credit_csv(
    path: str | Path,
    *,
    target: str | None,
    id_col: str | None = None,
    positive_label: str | None = None,
    categorical: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
) -> CreditTable:
    """Read and validate a credit CSV.

    Parameters
    ----------
    path : str or Path
        CSV file (comma, semicolon, tab or pipe separated; UTF-8 or Latin-1; gzip-compressed
        or not), or the name of an embedded data set (``uci``, ``german``).
    target : str or None
        Binary target column (1 = bad). Two-valued text or numeric targets are mapped to 0/1.
        None for a party that holds features only (the table's ``y`` is then all zeros).
    id_col : str, optional
        Entity key column. When None, a column named ``id`` or ``uscc`` (any case) is the key.
    positive_label : str, optional
        Target value that means "bad" when the target is not already 0/1.
    categorical : tuple of str
        Columns to treat as categories even if their values are numbers.
    drop : tuple of str
        Columns to ignore.

    Returns
    -------
    CreditTable

    Raises
    ------
    DataError
        Missing or empty file, missing target, non-binary target, a non-numeric value in a numeric
        column (with its row), duplicate IDs, or no usable feature column.
    """
    embedded = find_embedded(path)
    path = embedded_file(embedded) if embedded else Path(path)
    frame = _read_raw(path)
    where = source_name(path)
    columns = list(frame.columns)
    if target is not None and target not in columns:
        raise SchemaError(
            f"{where}: target column '{target}' not found; columns are: {', '.join(columns)}. "
            "Pass the right name with --target."
        )
    if id_col is None:
        id_col = next((c for c in columns if c.lower() in ID_NAMES and c != target), None)
    elif id_col not in columns:
        raise SchemaError(
            f"{where}: ID column '{id_col}' not found; columns are: {', '.join(columns)}. "
            "Pass the right name with --id-col, or leave it out if the file has no IDs."
        )
    for name in (*categorical, *drop):
        if name not in columns:
            raise SchemaError(f"{where}: column '{name}' (given as categorical/drop) not found.")
    missing = frame.apply(lambda s: s.str.strip().str.lower().isin(MISSING_TOKENS))
    if target is None:
        y = np.zeros(frame.shape[0], dtype=np.int8)
    else:
        y = _parse_target(frame[target], missing[target], where, target, positive_label)
    ids = _parse_ids(frame[id_col], missing[id_col], where, id_col) if id_col else None
    skip = {target, *drop} | ({id_col} if id_col else set())
    features = [c for c in columns if c not in skip and not c.startswith("Unnamed:")]
    numeric, cat = _split_features(frame, missing, features, set(categorical), where)
    unique_text = tuple(c for c in cat.columns if c not in categorical and _all_distinct(cat[c]))
    cat = cat.drop(columns=list(unique_text))
    if numeric.shape[1] + cat.shape[1] == 0:
        raise SchemaError(f"{where}: no feature columns besides the target and ID columns.")
    return CreditTable(where, target or "", y, numeric, cat, ids, unique_text,
                       labelled=target is not None)


def _all_distinct(values: pd.Series) -> bool:
    """A text column with a different value in every row carries no pattern to learn."""
    present = values.dropna()
    return len(present) >= 20 and present.nunique() == len(present)


def _read_raw(path: Path) -> pd.DataFrame:
    """Read every cell as text, detecting the delimiter and encoding."""
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path, or pass an embedded data set "
                        f"by name: {known_names()} (see `fedcredit datasets`).")
    if not path.is_file():
        raise DataError(f"{path}: is not a file.")
    raw = read_bytes(path)
    if not raw.strip():
        raise DataError(f"{path}: file is empty; expected a header line and at least one row.")
    _refuse_binary(path, raw)
    try:
        text_head = raw[:65536].decode("utf-8")
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        text_head, encoding = raw[:65536].decode("latin-1"), "latin-1"
    try:
        delimiter = csv.Sniffer().sniff(text_head.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(
            io.BytesIO(raw), sep=delimiter, dtype=str, keep_default_na=False, encoding=encoding,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty; expected a header line and rows.") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[0] == 0:
        raise DataError(f"{path}: file has a header but no data rows.")
    duplicated = pd.Index(frame.columns)[pd.Index(frame.columns).duplicated()].tolist()
    if duplicated:
        raise SchemaError(f"{path}: duplicate column names in the header: {', '.join(duplicated)}.")
    return frame


_BINARY_KINDS = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook (or another OLE2 document)"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def _refuse_binary(path: Path, raw: bytes) -> None:
    """Name a spreadsheet or other binary file given as a CSV (else pandas' tokenizer error)."""
    kind = next((what for magic, what in _BINARY_KINDS if raw.startswith(magic)), None)
    if kind is None and b"\x00" in raw[:4096]:
        kind = "a binary file (it holds NUL bytes; a UTF-16 export is one)"
    if kind is not None:
        raise DataError(f"{path}: this is {kind}, not a CSV text file. Save or export the sheet "
                        "as CSV (comma, semicolon or tab separated, UTF-8) and pass that file.")


_row_ref = row_ref


def _parse_target(
    values: pd.Series, missing: pd.Series, where: str, name: str, positive: str | None
) -> np.ndarray:
    """Map a two-valued target column to int8 0/1 (1 = bad)."""
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(
            f"{where}: column '{name}', {_row_ref(first)}: target is missing "
            f"({int(missing.sum())} rows in all); every row needs a 0/1 label."
        )
    text = values.str.strip()
    as_num = pd.to_numeric(text, errors="coerce")
    keys = as_num.map(lambda v: f"{v:g}") if as_num.notna().all() else text.str.lower()
    distinct = sorted(keys.unique())
    if len(distinct) == 1:
        raise DataError(
            f"{where}: column '{name}': target has a single value in all {len(keys)} rows; "
            "a model needs both defaulted and repaid rows. Check that the "
            "file holds both kinds of loans, or choose the label column with --target."
        )
    if len(distinct) != 2:  # the values themselves are the bank's data: counted, not shown
        raise CellError(where, name, f"target is not binary ({len(distinct)} distinct values)",
                        advice="Choose a 0/1 column with --target.")
    bad = _positive_value(distinct, keys, positive, where, name)
    return (keys == bad).to_numpy(dtype=np.int8)


def _positive_value(
    distinct: list[str], keys: pd.Series, positive: str | None, where: str, name: str
) -> str:
    """Which of the two target values means 'bad'."""
    if positive:
        wanted = positive.strip().lower()
        if wanted not in distinct:
            raise CellError(where, name, f"--positive-label '{positive}' is not one of its "
                            "values {value}", value=f"({', '.join(distinct)})")
        return wanted
    if set(distinct) == {"0", "1"}:
        return "1"
    if set(distinct) == {"1", "2"}:
        return "2"
    hits = [v for v in distinct if v in POSITIVE_TOKENS]
    if len(hits) == 1:
        return hits[0]
    goods = [v for v in distinct if v in NEGATIVE_TOKENS]
    if len(goods) == 1:
        return next(v for v in distinct if v != goods[0])
    counts = keys.value_counts()
    return str(counts.idxmin())


def _parse_ids(values: pd.Series, missing: pd.Series, where: str, name: str) -> np.ndarray:
    """Entity keys as stripped strings; missing or duplicate keys are errors."""
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(f"{where}: column '{name}', {_row_ref(first)}: ID is missing.")
    ids = values.str.strip()
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((ids == ids.iloc[pos]).to_numpy())[0])
        raise CellError(where, name, "duplicate ID {value} (first seen at "
                        f"{_row_ref(first)}; {int(dup.sum())} duplicates in all)", position=pos,
                        value=repr(ids.iloc[pos]), advice="IDs must be unique per row.")
    return ids.to_numpy(dtype=str)


def _blank_where(missing: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (object dtype) with None where ``missing`` is set.

    None goes in as a 0-d object array: ``np.where(mask, None, values)`` gives the same array,
    but numpy's stubs read a None argument as the one-argument ``np.where(condition)``.
    """
    return np.where(missing, np.asarray(None, dtype=object), values)


def _split_features(
    frame: pd.DataFrame,
    missing: pd.DataFrame,
    features: list[str],
    forced_categorical: set[str],
    where: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Type each feature column as numeric or categorical; report typos in numeric columns."""
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, np.ndarray] = {}
    for col in features:
        text = frame[col].str.strip()
        miss = missing[col].to_numpy()
        if col in forced_categorical:
            categorical[col] = _blank_where(miss, text.to_numpy(dtype=object))
            continue
        text_miss = miss
        miss = text.str.lower().isin(NUMERIC_MISSING_TOKENS).to_numpy()
        parsed = pd.to_numeric(text.where(~miss), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~miss & np.isnan(parsed)
        present = int((~miss).sum())
        if not bad.any():
            numeric[col] = parsed
        elif present and (present - int(bad.sum())) / present >= NUMERIC_SHARE_FOR_TYPO:
            pos = int(np.flatnonzero(bad)[0])
            raise CellError(where, col, "value {value} is not a number "
                            f"({int(bad.sum())} such values in this numeric column)",
                            position=pos, value=repr(text.iloc[pos]),
                            advice="Fix the value, or leave the cell empty for a missing value.")
        else:
            categorical[col] = _blank_where(text_miss, text.to_numpy(dtype=object))
    for col, values in numeric.items():
        if np.isinf(values).any():
            pos = int(np.flatnonzero(np.isinf(values))[0])
            raise DataError(f"{where}: column '{col}', {_row_ref(pos)}: value is infinite.")
    index = pd.RangeIndex(frame.shape[0])
    return pd.DataFrame(numeric, index=index), pd.DataFrame(categorical, index=index)
