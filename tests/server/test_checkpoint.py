"""Crash consistency of the coordinator's run folder: the checkpoint and its audit record are
one unit (audit written ahead, checkpoint the commit, reconciled on resume); a failed write
leaves the previous checkpoint and no temporary file; an unusable folder fails in one line
before any work."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from server.audit import ROLLBACK_KIND, AuditLog, AuditWriteError, verify_audit
from server.checkpoint import (
    TEMP_SUFFIX,
    CheckpointError,
    check_room,
    load_checkpoint,
    open_run_folder,
    save_checkpoint,
)
from server.run_state import FederatedResult


def committed_rounds(folder: Path, rounds: int) -> tuple[RunConfig, FederatedResult, str]:
    """A run folder after ``rounds`` rounds, each audited then checkpointed (as the coordinator
    does): the config, the last state and the checkpoint's head."""
    cfg = RunConfig(banks=3, rounds=4, out=str(folder))
    log = AuditLog(folder)
    log.append("preprocess", run_id="r", banks=[0, 1, 2])
    state, head = FederatedResult(run_id="r"), ""
    for rnd in range(1, rounds + 1):
        head = log.append("round", run_id="r", round=rnd, model_hash=f"{rnd:064x}")
        state = replace(state, rounds_done=rnd)
        save_checkpoint(folder, cfg, state, head)
    return cfg, state, head


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in RunFolder(folder).audit.read_text().splitlines()]


def test_a_resume_voids_the_records_written_after_the_last_checkpoint(tmp_path: Path) -> None:
    cfg, _, head = committed_rounds(tmp_path, 1)
    # round 2 was audited, then the checkpoint write failed (disk full) or the coordinator died
    AuditLog(tmp_path).append("round", run_id="r", round=2, model_hash="2" * 64)
    state = open_run_folder(tmp_path, replace(cfg, resume=True))
    assert state is not None and state.rounds_done == 1
    log = records(tmp_path)
    assert [r["kind"] for r in log] == ["preprocess", "round", "round", ROLLBACK_KIND]
    rollback = log[-1]
    assert rollback["voided"] == [2] and rollback["to_head"] == head and rollback["round"] == 1
    assert verify_audit(tmp_path, must_contain=head).ok
    # the round runs again after the rollback: the log now says round 1 is the last one done
    reopened = AuditLog(tmp_path)
    assert reopened.round == 1 and reopened.seq == 4


def test_a_consistent_folder_resumes_without_a_rollback(tmp_path: Path) -> None:
    cfg, _, _ = committed_rounds(tmp_path, 2)
    state = open_run_folder(tmp_path, replace(cfg, resume=True))
    assert state is not None and state.rounds_done == 2
    assert ROLLBACK_KIND not in {r["kind"] for r in records(tmp_path)}


def test_a_log_without_the_checkpoints_head_is_not_resumed(tmp_path: Path) -> None:
    cfg, _, _ = committed_rounds(tmp_path, 2)
    lines = RunFolder(tmp_path).audit.read_text().splitlines(keepends=True)
    RunFolder(tmp_path).audit.write_text("".join(lines[:-1]))  # the committed record cut
    with pytest.raises(CheckpointError, match="does not match checkpoint.json") as info:
        open_run_folder(tmp_path, replace(cfg, resume=True))
    assert "\n" not in str(info.value)


def test_a_torn_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    cfg, _, _ = committed_rounds(tmp_path, 1)
    with open(RunFolder(tmp_path).audit, "a", encoding="utf-8") as handle:
        handle.write('{"v":1,"seq":2,"kind":"rou')  # the append that the crash cut
    state = open_run_folder(tmp_path, replace(cfg, resume=True))
    assert state is not None and state.rounds_done == 1
    assert verify_audit(tmp_path).ok
    assert [r["kind"] for r in records(tmp_path)] == ["preprocess", "round"]


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, state, head = committed_rounds(tmp_path, 1)
    before = RunFolder(tmp_path).checkpoint.read_bytes()

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("server.checkpoint.os.replace", full)
    with pytest.raises(CheckpointError, match="Free room") as info:
        save_checkpoint(tmp_path, cfg, replace(state, rounds_done=2), "f" * 64)
    assert "\n" not in str(info.value) and "previous checkpoint is intact" in str(info.value)
    assert RunFolder(tmp_path).checkpoint.read_bytes() == before
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))
    assert load_checkpoint(tmp_path)[2] == head


def test_a_failed_audit_append_leaves_the_log_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    committed_rounds(tmp_path, 1)
    before = RunFolder(tmp_path).audit.read_bytes()
    log = AuditLog(tmp_path)

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("server.audit.os.fsync", full)
    with pytest.raises(AuditWriteError, match="resume the run"):
        log.append("round", run_id="r", round=2)
    assert RunFolder(tmp_path).audit.read_bytes() == before


def test_a_fresh_run_removes_stale_temporaries_and_the_previous_run(tmp_path: Path) -> None:
    cfg, _, _ = committed_rounds(tmp_path, 1)
    stale = RunFolder(tmp_path).checkpoint.with_name("checkpoint.json" + TEMP_SUFFIX)
    stale.write_text("{half")
    assert open_run_folder(tmp_path, cfg) is None
    assert not stale.exists() and not RunFolder(tmp_path).checkpoint.exists()
    assert not RunFolder(tmp_path).audit.exists()


def test_resume_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        open_run_folder(tmp_path, RunConfig(out=str(tmp_path), resume=True))


def test_an_unusable_folder_fails_in_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="not writable") as info:
        check_room(blocker / "run")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="MiB free"):
        check_room(tmp_path, need_bytes=2**62)
    assert list(tmp_path.iterdir()) == [blocker]  # the probe is gone


def test_the_weight_share_rows_survive_a_resume(tmp_path: Path) -> None:
    """The rows behind the last update sum are checkpointed, so the banks check the weight
    share of a resumed run's first sum too (an older checkpoint without them loads as 0)."""
    cfg, state, head = committed_rounds(tmp_path, 1)
    save_checkpoint(tmp_path, cfg, replace(state, train_rows={0: 5, 1: 7}, weights_rows=12),
                    head)
    _, loaded, _ = load_checkpoint(tmp_path)
    assert (loaded.train_rows, loaded.weights_rows) == ({0: 5, 1: 7}, 12)
    path = RunFolder(tmp_path).checkpoint
    doc = json.loads(path.read_text())
    del doc["weights_rows"]
    path.write_text(json.dumps(doc))
    assert load_checkpoint(tmp_path)[1].weights_rows == 0


def test_the_scored_round_survives_a_resume(tmp_path: Path) -> None:
    """A round's model is scored with the next round's training, so a checkpoint after round
    3 holds round 2's scores and says so; a checkpoint of an older release (no
    ``hist_round``) scored each round before writing it, and loads as scored through it."""
    cfg, state, head = committed_rounds(tmp_path, 3)
    save_checkpoint(tmp_path, cfg, replace(state, hist_round=2), head)
    assert load_checkpoint(tmp_path)[1].hist_round == 2
    path = RunFolder(tmp_path).checkpoint
    doc = json.loads(path.read_text())
    del doc["hist_round"]
    path.write_text(json.dumps(doc))
    assert load_checkpoint(tmp_path)[1].hist_round == 3
