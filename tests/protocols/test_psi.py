"""Tests of ECDH-PSI: correctness, commutativity, malformed input, serde, no identifier leaks."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    MalformedMessageError,
    MalformedPointError,
    ProtocolError,
    StaleRoundError,
)
from protocols.psi.blinding import (
    blind_points,
    check_received_points,
    hash_ids_to_points,
    split_points,
)
from protocols.psi.ecdh import (
    PsiMessage,
    PsiSession,
    initiator_finish,
    initiator_start,
    new_psi_session,
    psi_intersect,
    psi_message_from_bytes,
    psi_message_to_bytes,
    responder_finish,
    responder_reply,
)
from protocols.psi.messages import PSI_STAGES, STAGE_INITIATOR_BLINDED

P = 2**255 - 19
LOW_ORDER_U = (
    0, 1, P - 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
)
CODES_A = ("91350100M000100Y43", "9144030071526726XG", "914403001922038216", "91520000214434146R")
CODES_B = ("914403001922038216", "91440300192185379H", "91350100M000100Y43")


def seeded(seed: int):
    """Deterministic stand-in for ``secrets.token_bytes`` (tests only)."""
    return random.Random(seed).randbytes


def u_bytes(value: int) -> bytes:
    return value.to_bytes(32, "little")


scalars = st.binary(min_size=32, max_size=32)


@given(ids=st.lists(st.text(max_size=12), unique=True, max_size=40),
       picks=st.data(), seed=st.integers(0, 2**32))
@settings(max_examples=30, deadline=None)
def test_intersection_matches_set_intersection(ids, picks, seed) -> None:
    mask_a = picks.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    mask_b = picks.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    a = [x for x, keep in zip(ids, mask_a, strict=True) if keep]
    b = [x for x, keep in zip(reversed(ids), reversed(mask_b), strict=True) if keep]
    result_a, result_b = psi_intersect(a, b, rng=seeded(seed), workers=1)
    expected = set(a) & set(b)
    assert set(result_a.ids) == set(result_b.ids) == expected
    assert [a[i] for i in result_a.indices] == list(result_a.ids)
    assert [b[i] for i in result_b.indices] == list(result_b.ids)
    assert list(result_a.indices) == sorted(result_a.indices)
    assert (result_a.peer_set_size, result_b.peer_set_size) == (len(b), len(a))
    assert result_a.size == len(expected)


def test_bytes_ids_and_default_rng() -> None:
    a = [bytes([i, 0, 255]) for i in range(50)]
    b = [bytes([i, 0, 255]) for i in range(25, 90)]
    result_a, result_b = psi_intersect(a, b, workers=1)
    assert set(result_a.ids) == set(result_b.ids) == set(a[25:])


@given(a=scalars, b=scalars, point=st.binary(min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_blinding_commutes(a: bytes, b: bytes, point: bytes) -> None:
    hashed = hash_ids_to_points([point], session_id=bytes(16), salt=bytes(32))
    assert blind_points(a, blind_points(b, hashed)) == blind_points(b, blind_points(a, hashed))
    expected = X25519PrivateKey.from_private_bytes(a).exchange(
        X25519PublicKey.from_public_bytes(hashed))
    assert blind_points(a, hashed) == expected


def test_parallel_blinding_equals_in_process() -> None:
    points = hash_ids_to_points([str(i).encode() for i in range(600)],
                                session_id=bytes(16), salt=bytes(32))
    scalar = seeded(3)(32)
    assert blind_points(scalar, points, workers=2, parallel_threshold=10) == \
        blind_points(scalar, points, workers=1)


def test_parallel_blinding_reports_low_order_point() -> None:
    points = hash_ids_to_points([str(i).encode() for i in range(300)],
                                session_id=bytes(16), salt=bytes(32))
    points = points[:32 * 250] + u_bytes(1) + points[32 * 251:]
    with pytest.raises(MalformedPointError, match="point 250 is a low-order"):
        blind_points(seeded(4)(32), points, workers=2, parallel_threshold=10)


def test_hash_is_bound_to_session() -> None:
    ids = [b"91350100M000100Y43"]
    base = hash_ids_to_points(ids, session_id=bytes(16), salt=bytes(32))
    assert base != hash_ids_to_points(ids, session_id=bytes(15) + b"\x01", salt=bytes(32))
    assert base != hash_ids_to_points(ids, session_id=bytes(16), salt=bytes(31) + b"\x01")
    assert base[31] < 0x80


@pytest.mark.parametrize("value", LOW_ORDER_U)
def test_low_order_points_rejected(value: int) -> None:
    session = new_psi_session(seeded(1))
    message = PsiMessage(STAGE_INITIATOR_BLINDED, session.session_id, session.salt,
                         blinded=u_bytes(value))
    with pytest.raises(MalformedPointError, match="low-order"):
        responder_reply(["x"], message, rng=seeded(2))


@pytest.mark.parametrize("blob", [u_bytes(P), u_bytes(P + 5), u_bytes(9)[:31] + b"\x80",
                                  u_bytes(9) * 2])
def test_non_canonical_or_repeated_points_rejected(blob: bytes) -> None:
    with pytest.raises(MalformedPointError):
        check_received_points(blob)


@pytest.mark.parametrize("blob", [b"\x01" * 31, b"\x01" * 33])
def test_wrong_point_length_rejected(blob: bytes) -> None:
    with pytest.raises(MalformedPointError, match="multiple of 32"):
        blind_points(bytes(32), blob)
    with pytest.raises(MalformedPointError):
        PsiMessage(STAGE_INITIATOR_BLINDED, bytes(16), bytes(32), blinded=blob)


def test_steps_reject_wrong_session_stage_and_count() -> None:
    session = new_psi_session(seeded(5))
    state_a, first = initiator_start(CODES_A, session, rng=seeded(6))
    state_b, reply = responder_reply(CODES_B, first, session=session, rng=seeded(7))
    other = new_psi_session(seeded(8))
    with pytest.raises(StaleRoundError, match="another session"):
        responder_reply(CODES_B, first, session=other)
    with pytest.raises(ProtocolError, match="expected a 'responder-reply'"):
        initiator_finish(state_a, first)
    short = PsiMessage(reply.stage, reply.session_id, reply.salt, reply.blinded,
                       reply.double_blinded[32:])
    with pytest.raises(MalformedMessageError, match="3 double-blinded points for 4"):
        initiator_finish(state_a, short)
    result_a, final = initiator_finish(state_a, reply)
    with pytest.raises(MalformedMessageError, match="points for 3 sent"):
        responder_finish(state_b, PsiMessage(final.stage, final.session_id, final.salt,
                                             double_blinded=final.double_blinded[32:]))
    result_b = responder_finish(state_b, final)
    assert set(result_a.ids) == set(result_b.ids) == {CODES_A[0], CODES_A[2]}


def test_bad_identifiers() -> None:
    with pytest.raises(ValueError, match="deduplicate"):
        psi_intersect(["a", "a"], ["b"], workers=1)
    with pytest.raises(ValueError, match="deduplicate"):
        psi_intersect(["a", b"a"], ["b"], workers=1)
    with pytest.raises(TypeError, match="str or bytes"):
        psi_intersect([1, 2], ["b"], workers=1)  # type: ignore[list-item]


def test_empty_sets() -> None:
    result_a, result_b = psi_intersect([], CODES_B, workers=1)
    assert result_a.size == result_b.size == 0
    assert result_a.peer_set_size == 3


def test_messages_contain_no_raw_ids_or_hashes() -> None:
    session = new_psi_session()
    state_a, first = initiator_start(CODES_A, session)
    state_b, reply = responder_reply(CODES_B, first)
    _, final = initiator_finish(state_a, reply)
    wire = b"".join(psi_message_to_bytes(m) for m in (first, reply, final))
    hashed = hash_ids_to_points([c.encode() for c in CODES_A + CODES_B],
                                session_id=session.session_id, salt=session.salt)
    for code in CODES_A + CODES_B:
        for needle in (code.encode(), code.encode("utf-16-le"), code[8:17].encode(),
                       hashlib.sha256(code.encode()).digest()[:8]):
            assert needle not in wire
    for point in split_points(hashed):
        assert point[:8] not in wire


sessions = st.builds(PsiSession, st.binary(min_size=16, max_size=16),
                     st.binary(min_size=32, max_size=32))
blobs = st.integers(0, 6).flatmap(lambda n: st.binary(min_size=32 * n, max_size=32 * n))


@given(session=sessions, stage=st.sampled_from(PSI_STAGES), blinded=blobs, double=blobs)
@settings(max_examples=100, deadline=None)
def test_message_serde_round_trip(session, stage, blinded, double) -> None:
    if stage == PSI_STAGES[0]:
        double = b""
    if stage == PSI_STAGES[2]:
        blinded = b""
    message = PsiMessage(stage, session.session_id, session.salt, blinded, double)
    data = psi_message_to_bytes(message)
    assert psi_message_from_bytes(data) == message
    assert psi_message_from_bytes(bytearray(data)) == message
    assert message.session == session


def _valid_bytes() -> bytes:
    return psi_message_to_bytes(PsiMessage(PSI_STAGES[1], bytes(16), bytes(32),
                                           u_bytes(9), u_bytes(10)))


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [
        (lambda d: b"XXXXX" + d[5:], MalformedMessageError, "bad magic"),
        (lambda d: d[:-1], MalformedMessageError, "truncated"),
        (lambda d: d + b"\x00", MalformedMessageError, "trailing"),
        (lambda d: d[:5] + b"\x00\x02" + d[7:], MalformedMessageError, "schema_version 2"),
        (lambda d: d[:7] + b"\x07" + d[8:], MalformedMessageError, "stage index 7"),
        (lambda d: d[:9] + b"X" + d[10:], MalformedMessageError, "scheme"),
        (lambda d: d[:-40] + (31).to_bytes(8, "big") + d[-32:-1], MalformedPointError,
         "multiple of 32"),
        (lambda d: b"", MalformedMessageError, "truncated"),
    ],
)
def test_message_from_bytes_rejects_malformed(mutate, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        psi_message_from_bytes(mutate(_valid_bytes()))


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="session_id must be 16 bytes"):
        PsiSession(bytes(15), bytes(32))
    with pytest.raises(TypeError, match="salt must be bytes"):
        PsiSession(bytes(16), "0" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema_version"):
        PsiSession(bytes(16), bytes(32), schema_version=2)
    with pytest.raises(ValueError, match="unknown PSI stage"):
        PsiMessage("round-9", bytes(16), bytes(32))
    with pytest.raises(ValueError, match="no double-blinded"):
        PsiMessage(PSI_STAGES[0], bytes(16), bytes(32), double_blinded=u_bytes(9))
    with pytest.raises(TypeError, match="PSI message is bytes"):
        psi_message_from_bytes("text")  # type: ignore[arg-type]


def test_protocols_psi_imports_no_heavy_frameworks() -> None:
    code = ("import sys, protocols.psi.ecdh; bad = {'pandas', 'flwr', 'torch'} & set(sys.modules); "
            "assert not bad, bad")
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


# --- The sort is the shuffle (issue 17, part 4) ---------------------------------------------

def test_blinded_sets_are_sent_sorted_and_independent_of_input_order() -> None:
    """Both parties send their blinded sets sorted, so the bytes on the wire do not depend on
    the order of the input rows: a party's row order (and with it the labels or features in
    that order) cannot be read off the position of a point."""
    ids = [f"9144030{i:011d}" for i in range(60)]
    shuffled = random.Random(7).sample(ids, len(ids))
    peer = ids[::3] + [f"9135010{i:011d}" for i in range(20)]
    session = new_psi_session(seeded(1))
    sent = []
    for own in (ids, shuffled, sorted(ids, reverse=True)):
        state, first = initiator_start(own, session, rng=seeded(2), workers=1)
        points = split_points(first.blinded)
        assert points == sorted(points)
        _, reply = responder_reply(peer, first, rng=seeded(3), workers=1)
        assert split_points(reply.blinded) == sorted(split_points(reply.blinded))
        result, _ = initiator_finish(state, reply, workers=1)
        assert list(result.indices) == sorted(result.indices)
        assert set(result.ids) == set(ids[::3])
        sent.append((first.blinded, reply.blinded))
    assert sent[0] == sent[1] == sent[2]
    _, reply_of_peer_shuffled = responder_reply(list(reversed(peer)), initiator_start(
        ids, session, rng=seeded(2), workers=1)[1], rng=seeded(3), workers=1)
    assert reply_of_peer_shuffled.blinded == sent[0][1]
