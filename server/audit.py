"""Tamper-evident audit log of a run: ``DIR/audit.jsonl``, append-only, hash-chained.

Each line is one JSON record with a sequence number, the hash of the previous record and its
own hash (SHA-256 over the canonical JSON of every other field). Changing any byte, removing a
record or reordering records breaks the chain at the first affected record;
:func:`verify_audit` names it. The run's checkpoint stores the head hash, so a log cut short
at its tail is caught too - by a reader who trusts the coordinator's folder. Against the
coordinator itself, the heads the banks signed and keep in their own folders
(:mod:`federation.run.audit_heads`) are the reference: :func:`verify_bank_heads` catches a cut
tail or a rewritten (and re-hashed) record at any position a bank witnessed.

Records are written ahead of the checkpoint that commits them; a ``rollback`` record
(:data:`ROLLBACK_KIND`, appended by :func:`server.checkpoint.reconcile_audit` on resume) voids
the ones a crash left after the last checkpoint, naming their sequence numbers: the log is
never rewritten, so every head a bank signed stays in place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.errors import ConfigError, RunFolderError
from federation.run.audit_heads import KeptHead
from federation.run.folder import RunFolder
from protocols.identity.head_signing import AuditHead, InvalidHeadSignatureError, verify_head

GENESIS = "0" * 64
ROLLBACK_KIND = "rollback"
"""A record voiding the ones after a checkpoint that never landed (:mod:`server.checkpoint`)."""
RESERVED = frozenset({"v", "seq", "kind", "prev", "hash"})
SCHEMA_VERSION = 1


class AuditWriteError(RunFolderError):
    """A record could not be appended (disk full, permissions); one line, with what to do."""


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return sha256_hex(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


class AuditLog:
    """Appends hash-chained records to ``DIR/audit.jsonl`` (fsync'd after each record).

    Opening a log whose last line was cut mid-write (no final newline: a crash or a full disk
    during :meth:`append`) drops that torn line first; it never got a hash anyone saw.
    ``torn_bytes`` says how many bytes were dropped.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = RunFolder(Path(folder)).audit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seq, self.head, self.round = 0, GENESIS, 0
        self.torn_bytes = _drop_torn_line(self.path)
        if self.path.exists():
            records = _read(self.path)
            if records:
                last = records[-1][1]
                seq, head = last.get("seq"), last.get("hash")
                if type(seq) is not int or not isinstance(head, str):
                    raise ConfigError(f"{self.path}: the last record is damaged; check the log "
                                      "with `fedcredit audit verify` before resuming the run.")
                self.seq, self.head = seq + 1, head
                self.round = _last_round(r for _, r in records)

    def append(self, kind: str, **fields: Any) -> str:
        """Append one record; returns its hash (the new head).

        Raises
        ------
        ValueError
            A field would overwrite the chain's own (``v``, ``seq``, ``kind``, ``prev``,
            ``hash``): the record would no longer verify.
        """
        if RESERVED & fields.keys():
            raise ValueError(f"audit record fields {sorted(RESERVED & fields.keys())} are the "
                             "chain's own; rename them.")
        record = {"v": SCHEMA_VERSION, "seq": self.seq, "kind": kind, **fields, "prev": self.head}
        record["hash"] = _record_hash(record)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            _cut_back(self.path, size)
            raise AuditWriteError(
                f"cannot append to {self.path}: {exc.strerror or exc}; the log is as it was "
                "before this record. Free room (or fix permissions) there, then resume the "
                "run.") from exc
        self.seq, self.head = self.seq + 1, record["hash"]
        self.round = _last_round([record], self.round)
        return self.head

    def after(self, head: str) -> list[int]:
        """Sequence numbers of the records after the one whose hash is ``head`` (all of them
        when ``head`` is absent)."""
        records = [r for _, r in _read(self.path)] if self.path.exists() else []
        hashes = [r.get("hash") for r in records]
        start = hashes.index(head) + 1 if head in hashes else 0
        return [int(r["seq"]) for r in records[start:] if type(r.get("seq")) is int]

    def announced(self, run_id: str) -> AuditHead | None:
        """The head every request carries for the banks to sign (None before any record)."""
        if self.seq == 0:
            return None
        return AuditHead(run_id, self.seq - 1, self.round, self.head)


def _cut_back(path: Path, size: int) -> None:
    """Best effort: truncate a failed append back to ``size`` bytes (else the torn line is
    dropped on the next open)."""
    try:
        with open(path, "r+b") as handle:
            handle.truncate(size)
    except OSError:
        pass


def _drop_torn_line(path: Path) -> int:
    """Cut a last line that lacks its newline (an interrupted append); bytes removed."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return len(data) - keep


def _last_round(records: Iterable[dict[str, Any]], start: int = 0) -> int:
    """The round the latest record that names one is about (0 before the first round)."""
    found = start
    for record in records:
        if type(record.get("round")) is int:
            found = record["round"]
    return found


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


def verify_bank_heads(folder: str | Path, heads: Sequence[Sequence[KeptHead]],
                      registry: Mapping[int, Ed25519PublicKey]) -> AuditVerdict:
    """Check the log of ``folder`` against the heads the banks signed and kept.

    ``heads``: one list per bank file (:func:`federation.run.audit_heads.read_heads`);
    ``registry``: the banks' public signing keys. Each bank file must hold at least one head of
    this log's run; each such head must carry a valid signature of the bank it names, and the
    log must hold, at that head's position, a record with that hash. A head beyond the log's
    end means records were cut; another hash there means the log was rewritten from there,
    even when the chain itself was re-hashed. Run :func:`verify_audit` first: this checks
    the witnessed positions only.
    """
    records = [r for _, r in _read(RunFolder(Path(folder)).audit)] \
        if RunFolder(Path(folder)).audit.exists() else []
    run_id = next((r.get("run_id") for r in records if isinstance(r.get("run_id"), str)), None)
    checked = 0
    for number, kept_heads in enumerate(heads, start=1):
        mine = [k for k in kept_heads if k.statement.head.run_id == run_id]
        if not mine:
            return AuditVerdict(False, len(records), f"bank heads file {number} holds no head "
                                f"of this log's run ({run_id}): the log was replaced, or the "
                                "file is of another run.", 0)
        for kept in mine:
            problem = _witness_problem(records, kept, registry)
            if problem is not None:
                return AuditVerdict(False, len(records), problem,
                                    min(kept.statement.head.seq, len(records)))
            checked += 1
    return AuditVerdict(True, len(records), f"{len(records)} records; {checked} heads signed "
                        f"by {len(heads)} banks found in place.")


def _witness_problem(records: Sequence[dict[str, Any]], kept: KeptHead,
                     registry: Mapping[int, Ed25519PublicKey]) -> str | None:
    """One line saying how the log contradicts a kept head, or None when it agrees."""
    s, head = kept.statement, kept.statement.head
    if s.bank not in registry:
        return f"bank {s.bank} kept a head for round {head.round} but has no registered key."
    try:
        verify_head(registry[s.bank], kept.signature, s)
    except InvalidHeadSignatureError as exc:
        return str(exc)
    if head.seq >= len(records):
        return (f"round {head.round}: bank {s.bank} signed record {head.seq}, but the log "
                f"ends after {len(records)} records (records were cut from the end).")
    if records[head.seq].get("hash") != head.head:
        return (f"round {head.round}: record {head.seq} is not the one bank {s.bank} signed "
                "(the log was rewritten from there).")
    return None
