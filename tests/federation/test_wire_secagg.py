"""The masking bundle's wire form: round trips, refuses malformed containers, and every value
of a bundle is on the wire allow-list (a malformed session key is not)."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord, RecordDict
from hypothesis import given
from hypothesis import strategies as st

from federation.wire.allowlist import refusal
from federation.wire.secagg import (
    KEY_SECAGG,
    STEP_SECAGG,
    MaskingBundle,
    bundle_of,
    bundle_to_record,
    session_name,
    with_bundle,
)
from federation.wire.transcript import KIND_CONFIG, WireValue, value_bytes
from protocols.errors import MalformedMessageError

sessions = st.builds(session_name, st.sampled_from(["stats", "weights", "counts", "gradients"]),
                     st.integers(0, 999))
blobs = st.lists(st.binary(max_size=40), max_size=4).map(tuple)


@given(advertise=st.lists(sessions, max_size=2, unique=True).map(tuple),
       adverts=st.dictionaries(sessions, blobs, max_size=2),
       lengths=st.dictionaries(sessions, st.integers(1, 2**30), max_size=2),
       unmask=st.dictionaries(sessions, st.binary(max_size=40), max_size=2))
def test_bundle_round_trips(advertise: tuple[str, ...], adverts: dict, lengths: dict,
                            unmask: dict) -> None:
    bundle = MaskingBundle(advertise=advertise, adverts=adverts, signatures=adverts,
                           lengths=lengths, unmask=unmask, survivors=unmask,
                           attestations=adverts)
    assert bundle_of(with_bundle(RecordDict(), bundle)) == bundle


@pytest.mark.parametrize("record", [
    {"version": 1, "advertise": ["weights:x"]},
    {"version": 1, "advertise": ["gradients:1.2"]},
    {"version": 1, "advertise": [], "adverts/other:1": [b"a"]},
    {"version": 1, "advertise": [], "secrets/weights:1": b"a"},
    {"version": 2, "advertise": []},
    {"version": 1, "advertise": [], "lengths/weights:1": 0},
    {"version": 1, "advertise": [], "survivors/weights:1": [b"a"]},
    {"version": 1, "advertise": [], "attestations/weights:1": b"a"},
])
def test_malformed_bundles_are_refused(record: dict) -> None:
    with pytest.raises(MalformedMessageError):
        bundle_of(RecordDict({KEY_SECAGG: ConfigRecord(record)}))


def test_every_bundle_value_is_on_the_allow_list() -> None:
    bundle = MaskingBundle(advertise=("weights:3", "counts:3"), adverts={"weights:3": (b"k",)},
                           signatures={"weights:3": (b"s",)}, lengths={"weights:3": 25},
                           shares={"counts:3": (b"e", b"f")},
                           envelopes={"weights:3": (), "gradients:12": (b"g",)},
                           unmask={"counts:3": b"u"}, survivors={"counts:3": b"\x00\x01\x00\x02"},
                           attestations={"counts:3": (b"sig", b"")})
    for key, value in bundle_to_record(bundle).items():
        dtype, shape, raw = value_bytes(value)
        wire = WireValue(KEY_SECAGG, KIND_CONFIG, key, dtype, shape, raw)
        assert refusal(STEP_SECAGG.message_type, wire) is None, key
    dtype, shape, raw = value_bytes(b"x")
    stray = WireValue(KEY_SECAGG, KIND_CONFIG, "unmask/labels:3", dtype, shape, raw)
    assert refusal(STEP_SECAGG.message_type, stray) is not None
