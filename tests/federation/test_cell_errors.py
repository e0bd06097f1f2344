"""Errors that leave a node: the file's role, the column, the row and the rule; never a cell
value or the bank's local path (those stay in the bank's own log)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from federation.data.bank_data import bank_data_from_file
from federation.data.cell_errors import BANK_FILE_ROLE, CellError, wire_safe
from federation.data.synthetic import generate_enterprise_pair
from federation.data.table import load_credit_csv
from federation.errors import DataError
from federation.run.config import RunConfig

ROWS = 40


def bank_file(tmp_path: Path, cell: str = "", column: int = 1, row: int = 12,
              ids: list[str] | None = None, targets: list[str] | None = None) -> Path:
    lines = ["ID,amount,age,bad"]
    for i in range(ROWS):
        values = [ids[i] if ids else str(i + 1), str(1000 + 7 * i), str(20 + i % 50),
                  targets[i] if targets else str(i % 2)]
        if i == row and cell:
            values[column] = cell
        lines.append(",".join(values))
    path = tmp_path / "secret-branch" / "loans-2026.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def refused(path: Path, caplog: pytest.LogCaptureFixture) -> str:
    cfg = RunConfig(banks=3, target="bad", id_col="ID", test_fraction=0.25)
    with caplog.at_level(logging.ERROR, logger="fedcredit.data"), \
            pytest.raises(DataError) as info:
        bank_data_from_file(str(path), cfg, 0)
    return str(info.value)


def assert_leaks_nothing(text: str, path: Path, *values: str) -> None:
    assert BANK_FILE_ROLE in text
    for secret in (str(path), path.name, "secret-branch", *values):
        assert secret not in text, f"{secret!r} leaves the bank in: {text}"
    assert "\n" not in text


def test_a_bad_cell_names_role_column_row_and_rule_but_not_the_value(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = bank_file(tmp_path, cell="twelve", column=1, row=12)
    text = refused(path, caplog)
    assert_leaks_nothing(text, path, "twelve")
    assert "column 'amount', row 13 (line 14)" in text and "is not a number" in text
    assert "twelve" in caplog.text and str(path) in caplog.text  # full detail: bank's log only


def test_a_duplicate_id_is_not_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = [f"C{i:05d}" for i in range(ROWS)]
    ids[20] = ids[3]
    path = bank_file(tmp_path, ids=ids)
    text = refused(path, caplog)
    assert_leaks_nothing(text, path, "C00003")
    assert "column 'ID', row 21 (line 22): duplicate ID (first seen at row 4" in text


def test_a_target_that_is_not_binary_lists_no_values(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    targets = ["paid", "late", "written-off", "restructured"] * (ROWS // 4)
    path = bank_file(tmp_path, targets=targets)
    text = refused(path, caplog)
    assert_leaks_nothing(text, path, "paid", "late", "written-off", "restructured")
    assert "column 'bad': target is not binary (4 distinct values)" in text
    with pytest.raises(DataError) as local:  # the local loader does not list them either
        load_credit_csv(path, target="bad")
    assert "written-off" not in str(local.value)


def test_a_missing_file_is_named_by_its_role(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secret-branch" / "gone.csv"
    text = refused(path, caplog)
    assert_leaks_nothing(text, path)
    assert "file not found" in text


def test_an_invalid_credit_code_is_not_shown(tmp_path: Path) -> None:
    bank, _, _ = generate_enterprise_pair(60, seed=5)
    codes = []
    for row in range(5, 25):  # some land in the training rows the gate checks
        code = bank.loc[row, "uscc"]
        bank.loc[row, "uscc"] = code[:-1] + ("0" if code[-1] != "0" else "1")
        codes += [bank.loc[row, "uscc"], code[:8]]
    path = tmp_path / "secret-branch" / "firms.csv"
    path.parent.mkdir()
    bank.to_csv(path, index=False)
    cfg = RunConfig(banks=3, target="default", id_col="uscc", test_fraction=0.25)
    with pytest.raises(DataError) as info:
        bank_data_from_file(str(path), cfg, 0)
    text = str(info.value)
    assert_leaks_nothing(text, path, *codes)
    assert "column 'ID'" in text and "not a valid unified social credit code" in text


def test_local_messages_keep_the_value_and_the_public_form_drops_it() -> None:
    error = CellError("/data/x.csv", "amount", "value {value} is not a number (1 such values)",
                      position=4, value="'12o0'", advice="Fix it.")
    assert str(error) == ("/data/x.csv: column 'amount', row 5 (line 6): value '12o0' is not a "
                          "number (1 such values). Fix it.")
    assert error.public() == (f"{BANK_FILE_ROLE}: column 'amount', row 5 (line 6): value is "
                              "not a number (1 such values). Fix it.")
    other = wire_safe(DataError("/data/x.csv: file is empty."), "/data/x.csv")
    assert str(other) == f"{BANK_FILE_ROLE}: file is empty."
