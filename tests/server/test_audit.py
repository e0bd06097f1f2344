"""Audit log: intact chains verify; any changed byte, removed, reordered or cut record fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from federation.run.folder import AUDIT_FILE
from server.audit import AuditLog, verify_audit


def make_log(folder: Path, n: int = 5) -> list[str]:
    log = AuditLog(folder)
    heads = [log.append("round", round=i, model_hash=f"{i:064x}", banks=[0, 1, 2]) for i in range(n)]
    return heads


def lines(folder: Path) -> list[str]:
    return (folder / AUDIT_FILE).read_text().splitlines(keepends=True)


def test_intact_log_verifies_and_reopening_continues_the_chain(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    AuditLog(tmp_path).append("resume", from_round=4)
    verdict = verify_audit(tmp_path)
    assert verdict.ok and verdict.records == 4


@pytest.mark.parametrize("position", [0, 37, 120, -30])
def test_changing_any_byte_names_the_record(tmp_path: Path, position: int) -> None:
    make_log(tmp_path)
    data = bytearray((tmp_path / AUDIT_FILE).read_bytes())
    record_lines = data.decode().splitlines()
    target = 2
    start = sum(len(line) + 1 for line in record_lines[:target])
    index = start + (position % len(record_lines[target]))
    data[index] = ord("7") if data[index] != ord("7") else ord("8")
    (tmp_path / AUDIT_FILE).write_bytes(bytes(data))
    verdict = verify_audit(tmp_path)
    assert not verdict.ok and verdict.first_broken == target
    assert f"record {target}" in verdict.message


def test_removed_and_reordered_records_fail(tmp_path: Path) -> None:
    make_log(tmp_path)
    original = lines(tmp_path)
    (tmp_path / AUDIT_FILE).write_text("".join(original[:1] + original[2:]))
    assert verify_audit(tmp_path).first_broken == 1
    (tmp_path / AUDIT_FILE).write_text("".join([original[0], original[2], original[1]] + original[3:]))
    assert verify_audit(tmp_path).first_broken == 1


def test_records_cut_from_the_end_are_caught_with_the_reported_head(tmp_path: Path) -> None:
    heads = make_log(tmp_path)
    (tmp_path / AUDIT_FILE).write_text("".join(lines(tmp_path)[:-1]))
    assert verify_audit(tmp_path).ok  # a chain alone cannot see a cut tail...
    assert not verify_audit(tmp_path, final_head=heads[-1]).ok  # ...the reported head can
    assert not verify_audit(tmp_path, must_contain=heads[-1]).ok


def test_cli_exit_codes(tmp_path: Path) -> None:
    from fedcredit.cli.main import app

    heads = make_log(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"audit": {"head": heads[-1]}}))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", str(tmp_path)])
    assert ok.exit_code == 0 and "intact" in ok.output
    text = (tmp_path / AUDIT_FILE).read_text().replace('"round":3', '"round":9')
    (tmp_path / AUDIT_FILE).write_text(text)
    bad = runner.invoke(app, ["audit", "verify", str(tmp_path)])
    assert bad.exit_code == 1 and "record 3" in bad.output
