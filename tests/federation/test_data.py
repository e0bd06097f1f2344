"""Loader: real files load; every kind of bad input gets one clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federation.data.table import load_credit_csv
from federation.errors import DataError, SchemaError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_uci_loads_with_ids_and_numeric_columns() -> None:
    table = load_credit_csv(DATA / "uci_default_credit.csv", target="default_next_month")
    assert table.n_rows == 30000
    assert table.ids is not None and table.ids[0] == "1"  # ID auto-detected, not a feature
    assert "ID" not in table.numeric.columns
    assert table.numeric.shape[1] == 23 and table.categorical.shape[1] == 0
    assert abs(table.y.mean() - 0.2212) < 1e-4


def test_german_loads_categoricals() -> None:
    table = load_credit_csv(DATA / "german_credit.csv", target="bad")
    assert table.categorical.shape[1] == 13 and table.numeric.shape[1] == 7
    assert set(np.unique(table.y)) == {0, 1}


def test_missing_values_text_target_and_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path, "age;city;status\n30;Oslo;good\n;?;bad\n41;Rome;good\nNA;Oslo;bad\n")
    table = load_credit_csv(path, target="status")
    assert list(table.y) == [0, 1, 0, 1]
    assert np.isnan(table.numeric["age"].to_numpy()[[1, 3]]).all()
    assert table.categorical["city"].isna().sum() == 1
    assert table.ids is None


def test_positive_label_option(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y\n1,A\n2,B\n3,A\n")
    assert list(load_credit_csv(path, target="y", positive_label="B").y) == [0, 1, 0]
    with pytest.raises(DataError, match="positive-label 'C'"):
        load_credit_csv(path, target="y", positive_label="C")


def test_missing_target_names_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,0\n")
    with pytest.raises(SchemaError, match=r"f\.csv: target column 'bad' not found; columns are: a, b"):
        load_credit_csv(path, target="bad")


def test_target_not_binary(tmp_path: Path) -> None:
    path = write(tmp_path, "a,t\n1,0\n2,1\n3,2\n")
    with pytest.raises(DataError, match="target is not binary \\(3 distinct values"):
        load_credit_csv(path, target="t")


def test_a_target_of_one_class_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "a,t\n1,0\n2,0\n3,0\n")
    with pytest.raises(DataError, match="target has a single value in all 3 rows") as caught:
        load_credit_csv(path, target="t")
    assert "not binary" not in str(caught.value)


@pytest.mark.parametrize(("head", "kind"), [
    (b"PK\x03\x04\x14\x00\x06\x00", "ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "Excel .xls workbook"),
    ("a,t\n1,0\n".encode("utf-16"), "binary file"),
])
def test_a_spreadsheet_renamed_csv_is_named(tmp_path: Path, head: bytes, kind: str) -> None:
    path = tmp_path / "loans.csv"
    path.write_bytes(head + b"rest of the workbook" * 10)
    with pytest.raises(DataError, match="export the sheet as CSV") as caught:
        load_credit_csv(path, target="t")
    assert kind in str(caught.value) and "tokeniz" not in str(caught.value)


def test_missing_target_value_names_row(tmp_path: Path) -> None:
    path = write(tmp_path, "a,t\n1,0\n2,\n")
    with pytest.raises(DataError, match="column 't', row 2 \\(line 3\\): target is missing"):
        load_credit_csv(path, target="t")


def test_non_numeric_value_in_numeric_column_names_row(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i * 10},0\n" for i in range(1, 30))
    path = write(tmp_path, "ID,amount,t\n" + rows + "30,12o0,1\n")
    with pytest.raises(DataError, match=r"column 'amount', row 30 \(line 31\): value '12o0' is not a number"):
        load_credit_csv(path, target="t")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,a,t\n7,1,0\n8,2,1\n7,3,0\n")
    with pytest.raises(DataError, match=r"row 3 \(line 4\): duplicate ID '7' \(first seen at row 1"):
        load_credit_csv(path, target="t")


def test_explicit_id_column_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path, "a,t\n1,0\n")
    with pytest.raises(SchemaError, match="ID column 'key' not found"):
        load_credit_csv(path, target="t", id_col="key")


@pytest.mark.parametrize("text, message", [
    ("", "file is empty"),
    ("   \n", "file is empty"),
    ("a,t\n", "header but no data rows"),
])
def test_empty_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_credit_csv(write(tmp_path, text), target="t")


def test_missing_file() -> None:
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_credit_csv("nope.csv", target="t")


def test_only_target_column(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no feature columns"):
        load_credit_csv(write(tmp_path, "ID,t\n1,0\n2,1\n"), target="t")


def test_subset_keeps_alignment() -> None:
    table = load_credit_csv(DATA / "german_credit.csv", target="bad")
    part = table.subset(np.array([5, 2]))
    assert list(part.ids) == [table.ids[5], table.ids[2]]
    assert list(part.y) == [table.y[5], table.y[2]]
    assert part.numeric.iloc[0, 0] == table.numeric.iloc[5, 0]


def test_text_column_with_all_distinct_values_is_dropped(tmp_path: Path) -> None:
    rows = "".join(f"C{i:04d},{i},{i % 2}\n" for i in range(30))
    table = load_credit_csv(write(tmp_path, "code,amount,t\n" + rows), target="t")
    assert table.dropped == ("code",) and table.categorical.shape[1] == 0
