"""Tamper-evident audit log of a run: ``DIR/audit.jsonl``, append-only, hash-chained.

Each line is one JSON record with a sequence number, the hash of the previous record and its
own hash (SHA-256 over the canonical JSON of every other field). Changing any byte, removing a
record or reordering records breaks the chain at the first affected record;
:func:`verify_audit` names it. The run's checkpoint stores the head hash, so a log cut short
at its tail is caught too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.run.folder import RunFolder

GENESIS = "0" * 64
SCHEMA_VERSION = 1


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return sha256_hex(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


class AuditLog:
    """Appends hash-chained records to ``DIR/audit.jsonl`` (fsync'd after each record)."""

    def __init__(self, folder: str | Path) -> None:
        self.path = RunFolder(Path(folder)).audit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seq, self.head = 0, GENESIS
        if self.path.exists():
            records = _read(self.path)
            if records:
                last = records[-1][1]
                seq, head = last.get("seq"), last.get("hash")
                if type(seq) is not int or not isinstance(head, str):
                    raise ConfigError(f"{self.path}: the last record is damaged; check the log "
                                      "with `fedcredit audit verify` before resuming the run.")
                self.seq, self.head = seq + 1, head

    def append(self, kind: str, **fields: Any) -> str:
        """Append one record; returns its hash (the new head)."""
        record = {"v": SCHEMA_VERSION, "seq": self.seq, "kind": kind, **fields, "prev": self.head}
        record["hash"] = _record_hash(record)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.seq, self.head = self.seq + 1, record["hash"]
        return self.head


@dataclass(frozen=True)
class AuditVerdict:
    """Outcome of :func:`verify_audit`."""

    ok: bool
    records: int
    message: str
    first_broken: int | None = None


def _read(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) per line; a line that is not a UTF-8 JSON object is unreadable."""
    out = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            record = None
        out.append((number, record if isinstance(record, dict) else {"__unreadable__": line}))
    return out


def verify_audit(folder: str | Path, *, must_contain: str | None = None,
                 final_head: str | None = None) -> AuditVerdict:
    """Check the chain of ``folder/audit.jsonl``.

    ``must_contain``: a record hash the chain must hold (the checkpoint's audit head);
    ``final_head``: the hash the chain must end with (the head written into results.json).
    Either catches records cut from the end of the log.
    """
    path = RunFolder(Path(folder)).audit
    if not path.exists():
        return AuditVerdict(False, 0, f"{path} not found.")
    prev, records = GENESIS, _read(path)
    for index, (line, record) in enumerate(records):
        problem = None
        if "__unreadable__" in record:
            problem = "is not valid JSON"
        elif record.get("seq") != index:
            problem = f"has sequence number {record.get('seq')}, expected {index} (removed or reordered)"
        elif record.get("prev") != prev:
            problem = "does not follow the previous record (removed, reordered or altered)"
        elif record.get("hash") != _record_hash(record):
            problem = "was altered (its hash does not match its content)"
        if problem:
            return AuditVerdict(False, len(records), f"record {index} (line {line}) {problem}.",
                                index)
        prev = record["hash"]
    hashes = {r.get("hash") for _, r in records}
    if (must_contain is not None and must_contain not in hashes) or (
            final_head is not None and prev != final_head):
        return AuditVerdict(False, len(records), "the log ends before the last record the run "
                            "reported (records were cut from the end).", len(records))
    return AuditVerdict(True, len(records), f"{len(records)} records, chain intact.")
