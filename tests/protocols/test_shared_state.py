"""Deterministic AES-SIV sealing of the banks' shared state: round trip, equality, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation import shared_state
from protocols.aggregation.shared_state import (
    MAX_STATE_BYTES,
    STATE_KEY_BYTES,
    STATE_VERSION,
    derive_state_key,
    open_state,
    seal_state,
)
from protocols.errors import MalformedMessageError, ProtocolError, StateTamperedError

SECRET = bytes(range(32))
KEY = derive_state_key(SECRET, run_id="run-1")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2048), st.text(max_size=20), st.integers(0, 2**64 - 1))
def test_round_trip(plaintext: bytes, run_id: str, seq: int) -> None:
    key = derive_state_key(SECRET, run_id=run_id)
    blob = seal_state(plaintext, key=key, run_id=run_id, seq=seq)
    assert blob[0] == STATE_VERSION and len(blob) == 1 + 16 + len(plaintext)
    assert open_state(blob, key=key, run_id=run_id, seq=seq) == plaintext


def test_equal_states_give_equal_blobs_and_different_states_differ() -> None:
    a = seal_state(b"tree state", key=KEY, run_id="run-1", seq=3)
    assert a == seal_state(b"tree state", key=KEY, run_id="run-1", seq=3)
    assert a != seal_state(b"tree statf", key=KEY, run_id="run-1", seq=3)
    assert a != seal_state(b"tree state", key=KEY, run_id="run-1", seq=4)
    assert b"tree state" not in a


def test_the_key_is_64_bytes_and_depends_on_secret_and_run() -> None:
    assert len(KEY) == STATE_KEY_BYTES
    assert KEY == derive_state_key(SECRET, run_id="run-1")
    assert KEY != derive_state_key(SECRET, run_id="run-2")
    assert KEY != derive_state_key(bytes(32), run_id="run-1")


@pytest.mark.parametrize(("key", "run_id", "seq"), [
    pytest.param(KEY, "run-2", 5, id="other-run"),
    pytest.param(KEY, "run-1", 6, id="other-seq"),
    pytest.param(KEY, "run-1", 4, id="earlier-seq"),
    pytest.param(derive_state_key(bytes(32), run_id="run-1"), "run-1", 5, id="other-key"),
    pytest.param(derive_state_key(SECRET, run_id="run-2"), "run-1", 5, id="other-run-key"),
])
def test_a_blob_of_another_run_step_or_key_is_refused(key: bytes, run_id: str, seq: int) -> None:
    blob = seal_state(b"state", key=KEY, run_id="run-1", seq=5)
    with pytest.raises(StateTamperedError, match="refuse the request") as info:
        open_state(blob, key=key, run_id=run_id, seq=seq)
    assert "\n" not in str(info.value)


def test_every_single_flipped_bit_is_refused() -> None:
    blob = seal_state(b"some splits", key=KEY, run_id="run-1", seq=2)
    for index in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[index] ^= bit
            with pytest.raises(StateTamperedError):
                open_state(bytes(bad), key=KEY, run_id="run-1", seq=2)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=64), st.data())
def test_any_changed_byte_or_truncation_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    blob = seal_state(plaintext, key=KEY, run_id="run-1", seq=9)
    index = data.draw(st.integers(0, len(blob) - 1))
    delta = data.draw(st.integers(1, 255))
    bad = bytearray(blob)
    bad[index] ^= delta
    with pytest.raises(StateTamperedError):
        open_state(bytes(bad), key=KEY, run_id="run-1", seq=9)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(StateTamperedError):
        open_state(blob[:cut], key=KEY, run_id="run-1", seq=9)
    with pytest.raises(StateTamperedError):
        open_state(blob + b"\x00", key=KEY, run_id="run-1", seq=9)


def test_the_version_byte_is_checked() -> None:
    blob = seal_state(b"state", key=KEY, run_id="run-1", seq=1)
    for version in (0, 2, 255):
        with pytest.raises(StateTamperedError, match="version"):
            open_state(bytes([version]) + blob[1:], key=KEY, run_id="run-1", seq=1)


def test_too_short_blobs_are_refused() -> None:
    for blob in (b"", bytes([STATE_VERSION]), bytes([STATE_VERSION]) + bytes(15)):
        with pytest.raises(StateTamperedError, match="fewer than"):
            open_state(blob, key=KEY, run_id="run-1", seq=1)


def test_oversize_states_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_state, "MAX_STATE_BYTES", 100)
    assert open_state(seal_state(bytes(100), key=KEY, run_id="r", seq=0), key=KEY, run_id="r",
                      seq=0) == bytes(100)
    with pytest.raises(MalformedMessageError, match="cap"):
        seal_state(bytes(101), key=KEY, run_id="r", seq=0)
    with pytest.raises(MalformedMessageError, match="cap"):
        open_state(bytes([STATE_VERSION]) + bytes(16 + 101), key=KEY, run_id="r", seq=0)
    assert MAX_STATE_BYTES == 64 * 1024 * 1024


def test_state_errors_are_protocol_errors() -> None:
    assert issubclass(StateTamperedError, ProtocolError)


@pytest.mark.parametrize(("call", "error"), [
    (lambda: derive_state_key(b"short", run_id="r"), ValueError),
    (lambda: derive_state_key("text", run_id="r"), TypeError),  # type: ignore[arg-type]
    (lambda: derive_state_key(SECRET, run_id=1), TypeError),  # type: ignore[arg-type]
    (lambda: seal_state(b"x", key=bytes(32), run_id="r", seq=0), ValueError),
    (lambda: seal_state("x", key=KEY, run_id="r", seq=0), TypeError),  # type: ignore[arg-type]
    (lambda: seal_state(b"x", key=KEY, run_id="r", seq=-1), ValueError),
    (lambda: seal_state(b"x", key=KEY, run_id="r", seq=2**64), ValueError),
    (lambda: seal_state(b"x", key=KEY, run_id="r", seq=True), TypeError),
    (lambda: open_state(bytearray(20), key=KEY, run_id="r", seq=0), TypeError),  # type: ignore[arg-type]
])
def test_wrong_arguments_are_refused(call, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()
