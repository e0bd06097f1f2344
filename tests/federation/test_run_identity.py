"""The run identity recorded by the run itself (issue 13): release, UTC start and end, the data
hash where the writer read the data, the run id; and what a deployed coordinator records."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from federation.run.config import RunConfig
from federation.run.identity import (
    DATA_SET,
    data_hashes,
    fedcredit_version,
    file_sha256,
    run_identity,
)
from federation.run.results import HorizontalResults, read_results
from server.results import write_federated_only
from server.run_state import FederatedResult

START = datetime(2026, 12, 7, 9, 0, 5, tzinfo=UTC)


def test_the_identity_stamps_times_release_and_hashes(tmp_path: Path) -> None:
    data = tmp_path / "bank.csv"
    data.write_bytes(b"ID,bad\n1,0\n2,1\n")
    identity = run_identity(run_id="abc123", started=START,
                            data_sha256=data_hashes({DATA_SET: str(data), "missing": "/no/such"}),
                            now=lambda: START + timedelta(seconds=75))
    assert identity.started_utc == "2026-12-07T09:00:05Z"
    assert identity.finished_utc == "2026-12-07T09:01:20Z"
    assert identity.run_id == "abc123" and identity.fedcredit_version == fedcredit_version()
    assert identity.data_sha256 == {DATA_SET: hashlib.sha256(data.read_bytes()).hexdigest()}
    assert file_sha256("german") is not None  # an embedded data set: its packaged file
    assert run_identity(run_id="", started=START).data_sha256 is None


def test_a_deployed_coordinator_records_no_data_hash(tmp_path: Path) -> None:
    cfg = RunConfig(out=str(tmp_path), data_path=str(tmp_path / "bank.csv"), banks=3)
    path = write_federated_only(cfg, FederatedResult(run_id="feedbeef"), started=START)
    results = read_results(path)
    assert isinstance(results, HorizontalResults) and results.identity is not None
    assert results.identity.run_id == "feedbeef" and results.identity.data_sha256 is None
    assert results.identity.started_utc == "2026-12-07T09:00:05Z"
    assert results.identity.finished_utc >= results.identity.started_utc
