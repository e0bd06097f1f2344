"""What the report says about a run beyond its ``results.json``: when, with what, on which files.

The run's identity section needs facts the results document may not hold: when the file was
written (its modification time), which fedcredit release wrote the report, and a fingerprint
of each data file the run names. They are gathered here, once, by :func:`run_context` when
``fedcredit report RUN_DIR`` runs, and every one is labelled in the page for what it is: a
file's SHA-256 is of the file found at the recorded path **when the report was written**.
A run written by this release records its own identity (``results.identity``: release,
start and end, the data hash as the simulation read it, :mod:`federation.run.identity`); the
report shows that and uses these facts only beside it (a changed file then shows up as a
different hash next to the recorded one) or for files written before.

Security: hashing reads the data file's bytes on the machine that writes the report (the
coordinator's machine holds no bank file, so there it says "not found here"); the digest of the
whole file identifies it without revealing a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from federation.run.folder import RunFolder
from federation.run.identity import BANK_FILE, CENTER_FILE, DATA_SET, fedcredit_version, file_sha256
from federation.run.results import HorizontalResults, RunResults

__all__ = ["DataFingerprint", "RunContext", "fedcredit_version", "file_sha256", "run_context"]


@dataclass(frozen=True, slots=True)
class DataFingerprint:
    """One data file the run names: its role, the recorded path and its SHA-256 (or None)."""

    role: str
    path: str
    sha256: str | None


@dataclass(frozen=True, slots=True)
class RunContext:
    """Facts about a run folder gathered when the report is written (see the module doc)."""

    results_written: str | None = None
    report_version: str | None = None
    data_files: tuple[DataFingerprint, ...] = ()
    run_dir: Path | None = None
    audit_check: str | None = None
    """``fedcredit audit verify``'s verdict on the folder's audit log (None: no log here)."""
    audit_run_id: str | None = None


def data_paths(results: RunResults) -> list[tuple[str, str]]:
    """``(role, path)`` of each data file the results name (empty paths left out)."""
    if isinstance(results, HorizontalResults):
        named = [(DATA_SET, results.dataset)]
    else:
        named = [(BANK_FILE, results.bank_data or str(results.config.get("bank-data") or "")),
                 (CENTER_FILE,
                  results.center_data or str(results.config.get("center-data") or ""))]
    return [(role, str(path)) for role, path in named if path]


def audit_facts(run_dir: Path, results: RunResults) -> tuple[str | None, str | None]:
    """The audit log's verdict (as ``fedcredit audit verify`` gives it, against the head in
    results.json) and the run id of its first record; ``(None, None)`` without a log."""
    from server.audit import verify_audit

    path = RunFolder(run_dir).audit
    if not path.is_file():
        return None, None
    head = results.audit.head if isinstance(results, HorizontalResults) and results.audit else None
    verdict = verify_audit(run_dir, final_head=head)
    run_id = None
    try:
        with path.open("rb") as handle:
            first = json.loads(handle.readline() or b"{}")
        run_id = str(first["run_id"]) if isinstance(first, dict) and "run_id" in first else None
    except (OSError, ValueError):
        pass
    return ("intact: " if verdict.ok else "BROKEN: ") + verdict.message, run_id


def run_context(run_dir: Path, results: RunResults) -> RunContext:
    """The facts of :class:`RunContext` for ``run_dir`` (its results already read)."""
    stamp = None
    try:
        mtime = RunFolder(run_dir).results.stat().st_mtime
        stamp = datetime.fromtimestamp(mtime, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except OSError:
        pass
    prints = tuple(DataFingerprint(role, path, file_sha256(path))
                   for role, path in data_paths(results))
    check, run_id = audit_facts(run_dir, results)
    return RunContext(stamp, fedcredit_version(), prints, run_dir, check, run_id)
