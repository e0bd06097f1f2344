"""A bank's ``audit-heads.jsonl``: the coordinator's audit heads it signed, in its own folder.

One JSON line per head (format ``fedcredit-audit-head``, version 1), appended as requests
arrive; this module alone writes and reads the file. The bank keeps it beside its signing key
(``KEYS/bank-<k>/``, the folder only that bank holds: a deployed bank's ``[keys]
paillier-dir``, a simulation's ``OUT/keys/bank-<k>/``), out of the coordinator's reach.
``fedcredit audit verify DIR --bank-heads PATH...`` checks the log against these files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols.errors import ProtocolError
from protocols.identity.head_signing import AuditHead, HeadStatement, sign_head

LINE_FORMAT = "fedcredit-audit-head"
SCHEMA_VERSION = 1


class HeadEquivocationError(ProtocolError):
    """The coordinator announced two different heads for the same record of a run."""


@dataclass(frozen=True, slots=True)
class KeptHead:
    """One signed head as the bank keeps it."""

    statement: HeadStatement
    signature: bytes


def kept_head_to_line(kept: KeptHead) -> str:
    """One JSON line (no newline)."""
    s = kept.statement
    return json.dumps({"format": LINE_FORMAT, "v": SCHEMA_VERSION, "run": s.head.run_id,
                       "seq": s.head.seq, "round": s.head.round, "head": s.head.head,
                       "bank": s.bank, "node": s.node_id, "sig": kept.signature.hex()},
                      sort_keys=True, separators=(",", ":"))


def kept_head_from_line(line: str) -> KeptHead:
    """Inverse of :func:`kept_head_to_line`; anything else raises ProtocolError."""
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict) or doc.get("format") != LINE_FORMAT \
                or doc.get("v") != SCHEMA_VERSION:
            raise ValueError("not an audit head line")
        bank, node = doc["bank"], doc["node"]
        if type(bank) is not int or type(node) is not int or not isinstance(doc["run"], str):
            raise ValueError("bad field types")
        head = AuditHead(doc["run"], doc["seq"], doc["round"], doc["head"])
        return KeptHead(HeadStatement(head, bank, node), bytes.fromhex(doc["sig"]))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ProtocolError("a line of the bank's audit-heads.jsonl is not a signed audit "
                            "head; use the bank's own copy of the file.") from exc


def read_heads(path: Path) -> list[KeptHead]:
    """Every head in a bank's file (none when the file does not exist)."""
    if not path.exists():
        return []
    return [kept_head_from_line(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def witness(path: Path, key: Ed25519PrivateKey, head: AuditHead, *, bank: int,
            node_id: int) -> KeptHead | None:
    """Bank step: sign ``head`` and append it to ``path`` unless this run's record ``seq`` is
    already kept; returns the new entry (None when already kept).

    Raises
    ------
    HeadEquivocationError
        The bank already signed a different hash for the same record of this run: the
        coordinator's log was rewritten (or it shows banks different logs); the bank stops.
    """
    for kept in read_heads(path):
        old = kept.statement.head
        if (old.run_id, old.seq) == (head.run_id, head.seq):
            if old.head != head.head:
                raise HeadEquivocationError(
                    f"the coordinator announced another audit head for record {head.seq} "
                    f"(round {head.round}) than the one this bank signed before: its audit "
                    "log was rewritten; this bank refuses the run (check the log with "
                    "`fedcredit audit verify --bank-heads`).")
            return None
    statement = HeadStatement(head, bank, node_id)
    kept = KeptHead(statement, sign_head(key, statement))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(kept_head_to_line(kept) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return kept
