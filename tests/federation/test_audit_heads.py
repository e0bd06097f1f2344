"""A bank's kept audit heads: signed once per record, a second hash for a kept record is
refused (the coordinator rewrote its log mid-run), the file round-trips; the request carries
the head."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.run.audit_heads import (
    HeadEquivocationError,
    KeptHead,
    kept_head_from_line,
    kept_head_to_line,
    read_heads,
    witness,
)
from federation.run.config import RunConfig
from federation.wire.records import KEY_AUDIT_HEAD, audit_head_of, request_content
from protocols.errors import MalformedMessageError, ProtocolError
from protocols.identity.head_signing import AuditHead, HeadStatement, verify_head

KEY = Ed25519PrivateKey.generate()


def head(seq: int, digest: str = "a", run_id: str = "run-1") -> AuditHead:
    return AuditHead(run_id, seq, seq, digest * 64)


def test_each_record_is_signed_once_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "bank-0" / "audit-heads.jsonl"
    first = witness(path, KEY, head(0), bank=0, node_id=9)
    assert first is not None and witness(path, KEY, head(0), bank=0, node_id=9) is None
    witness(path, KEY, head(1, "b"), bank=0, node_id=9)
    witness(path, KEY, head(0, "c", run_id="run-2"), bank=0, node_id=9)  # another run
    kept = read_heads(path)
    assert [k.statement.head.seq for k in kept] == [0, 1, 0]
    for k in kept:
        verify_head(KEY.public_key(), k.signature, k.statement)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_another_hash_for_a_record_already_signed_stops_the_bank(tmp_path: Path) -> None:
    """A deviating coordinator that rewrites record 1 mid-run and announces the new head is
    caught by the bank at its next request, before it answers."""
    path = tmp_path / "audit-heads.jsonl"
    witness(path, KEY, head(1, "a"), bank=0, node_id=9)
    with pytest.raises(HeadEquivocationError, match=r"record 1 \(round 1\).*rewritten"):
        witness(path, KEY, head(1, "d"), bank=0, node_id=9)


@settings(max_examples=40, deadline=None)
@given(seq=st.integers(0, 10**9), rnd=st.integers(-1, 10**6), bank=st.integers(0, 1000),
       node=st.integers(0, 2**64 - 1), run_id=st.text(max_size=20))
def test_head_lines_round_trip(seq: int, rnd: int, bank: int, node: int, run_id: str) -> None:
    statement = HeadStatement(AuditHead(run_id, seq, rnd, "e" * 64), bank, node)
    kept = KeptHead(statement, b"\x01" * 64)
    assert kept_head_from_line(kept_head_to_line(kept)) == kept


@pytest.mark.parametrize("line", ["", "{}", "[1]", '{"format":"fedcredit-audit-head","v":1}',
                                  "not json", '{"format":"fedcredit-audit-head","v":1,"run":"r",'
                                  '"seq":-1,"round":0,"head":"' + "a" * 64 + '","bank":0,'
                                  '"node":1,"sig":"00"}'])
def test_malformed_lines_raise_a_named_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        kept_head_from_line(line)


def test_a_request_carries_the_head_and_a_malformed_one_is_refused() -> None:
    content = request_content(RunConfig(), run_id="run-1", audit=head(3))
    assert audit_head_of(content) == head(3)
    assert audit_head_of(request_content(RunConfig(), run_id="run-1")) is None
    content.config_records[KEY_AUDIT_HEAD]["seq"] = -2
    with pytest.raises(MalformedMessageError, match="audit head"):
        audit_head_of(content)


_VALUES = st.one_of(st.none(), st.integers(-2, 2**63 - 1), st.text(max_size=70), st.booleans(),
                    st.binary(max_size=8), st.floats(allow_nan=True))


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(["run-id", "seq", "round", "head", "other"]),
                              _VALUES, max_size=5))
def test_any_audit_head_record_from_the_coordinator_is_read_or_refused_by_name(fields) -> None:
    """The head is data from another party: whatever the record holds, the bank either reads
    a valid head or raises MalformedMessageError (never another error)."""
    from flwr.app import ConfigRecord

    content = request_content(RunConfig(), run_id="run-1")
    content.config_records[KEY_AUDIT_HEAD] = ConfigRecord(
        {k: v for k, v in fields.items() if v is not None})
    try:
        got = audit_head_of(content)
    except MalformedMessageError:
        return
    assert got is not None and int(got.head, 16) >= 0 and got.seq >= 0
