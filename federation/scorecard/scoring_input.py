"""Read a file of entities to score and check it against a model's schema.

The model's schema is its :class:`~federation.ml.preprocess.Preprocessor`: every numeric and
categorical column it was trained on must be present (extra columns are ignored; the target is
optional). Values are parsed as in :func:`federation.data.table.load_credit_csv` (same missing-value
words, numbers in numeric columns, stripped text in categorical ones), but only the model's
columns are read, and numbers take pandas' fast C parser with an exact fallback, so large files
score quickly. Runs on the bank's own node; nothing is sent anywhere.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.embedded import GZIP_MAGIC, embedded_file, find_embedded, source_name
from federation.data.table import MISSING_TOKENS, NUMERIC_MISSING_TOKENS, CreditTable
from federation.errors import DataError, SchemaError
from federation.ml.preprocess import Preprocessor


@dataclass(frozen=True)
class ScoringInput:
    """Rows to score: IDs, the table in the model's columns, and labels when the file has them.

    Attributes
    ----------
    ids : str array
        The ID column's values, or the 1-based row numbers when the file has none.
    id_column : str
        Name of the ID column used ("" for row numbers).
    table : CreditTable
        The model's columns; ``table.y`` holds the labels, or zeros when ``labels`` is None.
    labels : int8 array or None
        0/1 target values when the file has the target column with 0/1 values.
    """

    ids: np.ndarray
    id_column: str
    table: CreditTable
    labels: np.ndarray | None

    @property
    def n_rows(self) -> int:
        """Number of entities."""
        return self.table.n_rows


def _with_case_variants(tokens: frozenset[str]) -> list[str]:
    return sorted({v for t in tokens for v in (t, t.upper(), t.title())})


def _sniff(path: Path) -> tuple[str, str, list[str], str | None]:
    """Delimiter, encoding, stripped header names and compression (gzip or None) of a CSV file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found. Give the file of entities to score with --data.")
    with path.open("rb") as f:
        head = f.read(65536)
    compression = "gzip" if head[:2] == GZIP_MAGIC else None
    if compression:
        try:
            with gzip.open(path, "rb") as f:
                head = f.read(65536)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    if not head.strip():
        raise DataError(f"{path}: file is empty; expected a header line and rows to score.")
    try:
        text, encoding = head.decode("utf-8"), "utf-8-sig"
    except UnicodeDecodeError:
        text, encoding = head.decode("latin-1"), "latin-1"
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    header = [c.strip() for c in next(csv.reader([first], delimiter=delimiter))]
    return delimiter, encoding, header, compression


def check_schema(path: Path, header: list[str], prep: Preprocessor, model_dir: str) -> None:
    """Raise :class:`SchemaError` naming every model column the file lacks."""
    needed = [*prep.numeric, *(c for c, _ in prep.categorical)]
    missing = [c for c in needed if c not in header]
    if missing and len(missing) == len(needed):
        shown = ", ".join(needed[:5]) + (", ..." if len(needed) > 5 else "")
        raise SchemaError(
            f"{path}: has none of the {len(needed)} feature columns the model in {model_dir} was "
            f"trained on ({shown}); check that --data and --model belong together."
        )
    if missing:
        raise SchemaError(
            f"{path}: column(s) {', '.join(missing)} required by the model in {model_dir} are "
            f"missing ({len(missing)} of {len(needed)}); add them (cells may be empty for "
            "missing values) or score with a model trained without them."
        )


def _numeric_column(raw: pd.Series, where: Path, name: str) -> np.ndarray:
    """Numbers with NaN for missing; a non-number is an error naming its row."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.float64)
        if not np.isinf(values).any():
            return values
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    miss = text.str.lower().isin(NUMERIC_MISSING_TOKENS).to_numpy()
    values = pd.to_numeric(text.where(~miss), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~miss & (np.isnan(values) | np.isinf(values))
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: column '{name}', row {pos + 1} (line {pos + 2}): value {text.iloc[pos]!r} "
            f"is not a number ({int(bad.sum())} such values). The model treats '{name}' as "
            "numeric: fix the value, or leave the cell empty for a missing value."
        )
    return values


def _clean_text(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return None if text.lower() in MISSING_TOKENS else text


def _text_column(raw: pd.Series) -> np.ndarray:
    """Stripped text with None for the missing-value words (cleaned once per distinct value)."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    cleaned = np.array([*(_clean_text(u) for u in uniques), None], dtype=object)
    return cleaned[codes]  # code -1 (a missing cell) picks the trailing None


def _labels(raw: pd.Series) -> np.ndarray | None:
    """0/1 labels when the target column holds exactly those values, else None."""
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    if values.size == 0 or np.isnan(values).any() or not np.isin(values, (0.0, 1.0)).all():
        return None
    return values.astype(np.int8)


def _pick_id_column(header: list[str], id_col: str, target: str, path: Path) -> str:
    if id_col:
        if id_col not in header:
            raise SchemaError(f"{path}: ID column '{id_col}' not found; pass the file's ID column "
                              "with --id-col (or leave it out to number the rows).")
        return id_col
    return next((c for c in header if c.lower() == "id" and c != target), "")


def read_scoring_file(
    path: str | Path, prep: Preprocessor, *, target: str = "", id_col: str = "",
    model_dir: str = "the model",
) -> ScoringInput:
    """Read and validate the entities in ``path`` against ``prep``'s columns.

    Parameters
    ----------
    path : str or Path
        CSV (gzip-compressed or not) with (at least) the model's feature columns, or the name
        of an embedded data set (``uci``, ``german``).
    prep : Preprocessor
        The model's schema.
    target : str
        Target column; used for labels when present with 0/1 values.
    id_col : str
        ID column; "" picks a column named ``id`` (any case), else rows are numbered from 1.
    model_dir : str
        Where the model came from, for messages.

    Raises
    ------
    SchemaError
        A model column or the named ID column is missing.
    DataError
        Unreadable file, or a non-number in a numeric column.
    """
    embedded = find_embedded(path)
    path = embedded_file(embedded) if embedded else Path(path)
    delimiter, encoding, header, compression = _sniff(path)
    check_schema(path, header, prep, model_dir)
    id_name = _pick_id_column(header, id_col, target, path)
    cats = [c for c, _ in prep.categorical]
    extra = [c for c in (id_name, target) if c and c in header and c not in prep.numeric + tuple(cats)]
    na_values = {c: _with_case_variants(NUMERIC_MISSING_TOKENS) for c in prep.numeric}
    try:
        frame = pd.read_csv(
            path, sep=delimiter, encoding=encoding, compression=compression,
            usecols=[*prep.numeric, *cats, *extra],
            dtype={c: str for c in (*cats, *extra)}, keep_default_na=False, na_values=na_values,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}).") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[0] == 0:
        raise DataError(f"{path}: file has a header but no rows to score.")
    numeric = pd.DataFrame({c: _numeric_column(frame[c], path, c) for c in prep.numeric})
    categorical = pd.DataFrame({c: _text_column(frame[c]) for c in cats}, index=numeric.index
                               if prep.numeric else None)
    labels = _labels(frame[target]) if target and target in frame.columns else None
    ids = (frame[id_name].astype(str).str.strip().to_numpy(dtype=str) if id_name
           else np.arange(1, frame.shape[0] + 1).astype(str))
    y = labels if labels is not None else np.zeros(frame.shape[0], dtype=np.int8)
    table = CreditTable(source_name(path), target, y, numeric, categorical, ids)
    return ScoringInput(ids, id_name, table, labels)
