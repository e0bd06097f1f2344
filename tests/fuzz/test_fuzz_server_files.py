"""Fuzz the coordinator's run-folder files: checkpoints and the hash-chained audit log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.ml.preprocess import FeatureLayout
from federation.run.config import RunConfig
from federation.run.folder import AUDIT_FILE, CHECKPOINT_FILE
from federation.steps.secure_sum import KIND_COUNTS, KIND_STATS, PlainSum
from protocols.errors import FedCreditError
from server.audit import AuditLog, AuditVerdict, verify_audit
from server.checkpoint import load_checkpoint, save_checkpoint
from server.run_state import FederatedResult, RoundRecord

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_run")


@pytest.fixture(scope="module")
def checkpoint_doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    state = FederatedResult(
        run_id="run-1", layout=FeatureLayout(("age",), (("region", ("n", "s")),)),
        stats_sum=PlainSum().seal(np.arange(4.0), kind=KIND_STATS, run_id="run-1", round=0),
        hist_sum=PlainSum().seal(np.arange(6.0), kind=KIND_COUNTS, run_id="run-1", round=1),
        rounds_done=1, round_seconds=[0.5], round_banks=[3],
        history=[RoundRecord(1, 0.7, 0.3, 0.5, 3)], train_rows={0: 10, 1: 12},
        dropouts=[{"round": 1, "node": 7, "reason": "timeout"}])
    folder = tmp_path_factory.mktemp("valid_checkpoint")
    path = save_checkpoint(folder, RunConfig(banks=3), state, "ab" * 32)
    assert load_checkpoint(folder)[1] == state
    return json.loads(path.read_text())


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_damaged_checkpoints_raise_only_named_errors(data, fuzz, folder, checkpoint_doc) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    (folder / CHECKPOINT_FILE).write_text(json.dumps(checkpoint_doc))
    assert load_checkpoint(folder)[2] == "ab" * 32
    (folder / CHECKPOINT_FILE).write_bytes(data.draw(fuzz.json_like(checkpoint_doc)))
    try:
        cfg, state, head = load_checkpoint(folder)
    except FedCreditError:
        return
    assert isinstance(cfg, RunConfig) and isinstance(state, FederatedResult)
    assert isinstance(head, str)


@pytest.fixture(scope="module")
def audit_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("valid_audit")
    log = AuditLog(folder)
    for index in range(4):
        log.append("round", round=index, banks=[0, 1, 2], model_hash=f"{index:064x}")
    return (folder / AUDIT_FILE).read_bytes().splitlines(keepends=True)


@st.composite
def _damaged_log(draw: st.DrawFn, fuzz, valid: list[bytes]) -> bytes:
    lines = list(valid)
    documents = {line: json.loads(line) for line in valid}
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("record", "delete", "swap", "repeat", "bytes")))
        at = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines or op == "bytes":
            return draw(fuzz.bytes_like(b"".join(lines), max_size=300))
        if op == "record" and lines[at] in documents:
            lines[at] = draw(fuzz.json_like(documents[lines[at]])) + b"\n"
        elif op == "record":
            lines[at] = draw(fuzz.bytes_like(lines[at]))
        elif op == "delete":
            del lines[at]
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines.insert(at, lines[at])
    return b"".join(lines)


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_damaged_audit_logs_get_a_verdict_never_an_exception(data, fuzz, folder,
                                                             audit_lines) -> None:
    head = json.loads(audit_lines[-1])["hash"]
    # the intact log verifies (a verifier refusing everything fails here)
    (folder / AUDIT_FILE).write_bytes(b"".join(audit_lines))
    assert verify_audit(folder, must_contain=head, final_head=head).ok
    (folder / AUDIT_FILE).write_bytes(data.draw(_damaged_log(fuzz, audit_lines)))
    verdict = verify_audit(folder, must_contain=data.draw(st.sampled_from([None, head])),
                           final_head=data.draw(st.sampled_from([None, head])))
    assert isinstance(verdict, AuditVerdict)
    try:
        log = AuditLog(folder)  # resuming a run reopens the log
    except FedCreditError:
        assert not verdict.ok
        return
    if verdict.ok:
        assert log.seq == verdict.records
