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


# --- Heads the banks signed and keep in their own folders (issue 12, part 7) ---------------

def witnessed_run(tmp_path: Path, rounds: int = 4):
    """A coordinator's log of ``rounds`` rounds, every head announced to two banks, which sign
    and keep it in their own folders (as each request does in a run)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from federation.run.audit_heads import witness

    keys = {bank: Ed25519PrivateKey.generate() for bank in (0, 1)}
    files = {bank: tmp_path / f"bank-{bank}" / "audit-heads.jsonl" for bank in keys}
    log, run_dir = AuditLog(tmp_path / "run"), tmp_path / "run"
    log.append("preprocess", run_id="run-a", banks=[0, 1])
    for rnd in range(1, rounds + 1):
        for bank, key in keys.items():  # the request of round `rnd` carries the head so far
            witness(files[bank], key, log.announced("run-a"), bank=bank, node_id=100 + bank)
        log.append("round", run_id="run-a", round=rnd, model_hash=f"{rnd:064x}")
    log.append("finalize", run_id="run-a", rounds=rounds)
    registry = {bank: key.public_key() for bank, key in keys.items()}
    return run_dir, files, registry


def rewrite_and_rehash(run_dir: Path, index: int, **changes) -> None:
    """What a deviating coordinator can do to its own log: edit record ``index`` and re-hash
    the chain from there, so that the chain alone verifies."""
    from server.audit import _record_hash

    records = [json.loads(line) for line in lines(run_dir)]
    records[index].update(changes)
    for i in range(index, len(records)):
        records[i]["prev"] = records[i - 1]["hash"] if i else "0" * 64
        records[i]["hash"] = _record_hash(records[i])
    (run_dir / AUDIT_FILE).write_text("".join(
        json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records))


def check_heads(run_dir: Path, files: dict, registry: dict):
    from federation.run.audit_heads import read_heads
    from server.audit import verify_bank_heads

    return verify_bank_heads(run_dir, [read_heads(f) for f in files.values()], registry)


def test_the_intact_log_agrees_with_every_head_the_banks_signed(tmp_path: Path) -> None:
    run_dir, files, registry = witnessed_run(tmp_path)
    verdict = check_heads(run_dir, files, registry)
    assert verdict.ok and "8 heads signed by 2 banks" in verdict.message


def test_a_log_cut_after_round_2_fails_against_the_bank_heads_naming_the_round(
        tmp_path: Path) -> None:
    run_dir, files, registry = witnessed_run(tmp_path)
    (run_dir / AUDIT_FILE).write_text("".join(lines(run_dir)[:3]))  # preprocess, rounds 1-2
    assert verify_audit(run_dir).ok  # the chain alone (and no checkpoint) cannot tell
    verdict = check_heads(run_dir, files, registry)
    assert not verdict.ok
    assert verdict.message.startswith("round 3: bank 0 signed record 3")
    assert "records were cut" in verdict.message


def test_a_rewritten_and_rehashed_record_fails_against_the_bank_heads(tmp_path: Path) -> None:
    run_dir, files, registry = witnessed_run(tmp_path)
    rewrite_and_rehash(run_dir, 2, model_hash="f" * 64)  # round 2's record
    assert verify_audit(run_dir).ok  # re-hashed: the chain itself is consistent
    verdict = check_heads(run_dir, files, registry)
    assert not verdict.ok and verdict.first_broken == 2
    assert verdict.message == ("round 2: record 2 is not the one bank 0 signed (the log was "
                               "rewritten from there).")


def test_a_changed_head_file_a_foreign_key_or_another_runs_log_fail(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    run_dir, files, registry = witnessed_run(tmp_path)
    other = {**registry, 1: Ed25519PrivateKey.generate().public_key()}
    assert "does not verify" in check_heads(run_dir, files, other).message
    text = files[0].read_text()
    files[0].write_text(text.replace('"round":2', '"round":7', 1))
    assert "does not verify" in check_heads(run_dir, files, registry).message
    files[0].write_text(text)
    rewrite_and_rehash(run_dir, 0, run_id="run-b")  # a whole new log under another run id
    verdict = check_heads(run_dir, files, registry)
    assert not verdict.ok and "holds no head of this log's run" in verdict.message


def test_audit_verify_cli_with_bank_heads(tmp_path: Path) -> None:
    from fedcredit.cli.main import app

    run_dir, files, registry = witnessed_run(tmp_path)
    registry_file = tmp_path / "signing-registry.json"
    from protocols.identity.signing import public_key_hex

    registry_file.write_text(json.dumps({str(b): public_key_hex(k) for b, k in registry.items()}))
    args = ["audit", "verify", str(run_dir), "--signing-registry", str(registry_file),
            "--bank-heads", str(files[0].parent), "--bank-heads", str(files[1])]
    intact = CliRunner().invoke(app, args)
    assert intact.exit_code == 0 and "8 heads signed by 2 banks" in intact.output
    (run_dir / AUDIT_FILE).write_text("".join(lines(run_dir)[:2]))
    cut = CliRunner().invoke(app, args)
    assert cut.exit_code == 1 and "BROKEN" in cut.output and "round 2" in cut.output
    missing = CliRunner().invoke(app, args[:3] + args[5:])  # no registry in RUN/keys either
    assert missing.exit_code == 1 and "--signing-registry" in missing.output


def test_a_field_named_like_the_chains_own_is_refused(tmp_path: Path) -> None:
    """A boosted-tree record once carried ``seq=`` (its request number), which overwrote the
    chain's sequence number: every tree run's log failed verification."""
    with pytest.raises(ValueError, match=r"\['seq'\]"):
        AuditLog(tmp_path).append("tree", round=1, seq=3)


# --- Linkage (issue 17, part 4): each record names its predecessor's hash -------------------

def test_every_record_names_the_previous_records_hash(tmp_path: Path) -> None:
    heads = make_log(tmp_path, 4)
    records = [json.loads(line) for line in lines(tmp_path)]
    assert [r["prev"] for r in records] == ["0" * 64] + heads[:-1]
    assert [r["hash"] for r in records] == heads


def test_a_record_edited_and_rehashed_alone_breaks_the_link_to_the_next(tmp_path: Path) -> None:
    """Edit record 2 and recompute its own hash: the record is self-consistent, but record 3
    still names the old hash, so the chain breaks there."""
    from server.audit import _record_hash

    make_log(tmp_path)
    records = [json.loads(line) for line in lines(tmp_path)]
    records[2]["model_hash"] = "e" * 64
    records[2]["hash"] = _record_hash(records[2])
    (tmp_path / AUDIT_FILE).write_text("".join(
        json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records))
    verdict = verify_audit(tmp_path)
    assert not verdict.ok and verdict.first_broken == 3
    assert "does not follow the previous record" in verdict.message


def test_rewriting_every_later_hash_passes_the_chain_but_not_the_bank_heads(
        tmp_path: Path) -> None:
    """The same edit with every later record re-hashed too: the chain alone cannot tell, the
    heads the banks kept outside the log can (and so can the head the run reported)."""
    run_dir, files, registry = witnessed_run(tmp_path)
    reported = json.loads(lines(run_dir)[-1])["hash"]
    rewrite_and_rehash(run_dir, 2, model_hash="e" * 64)
    assert verify_audit(run_dir).ok
    assert not verify_audit(run_dir, final_head=reported).ok
    verdict = check_heads(run_dir, files, registry)
    assert not verdict.ok and verdict.first_broken == 2
