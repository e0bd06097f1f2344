"""Fuzz secure summation with malformed sealed vectors, plain and under Paillier."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_GRADIENTS,
    KIND_STATS,
    KIND_WEIGHTS,
    KINDS,
    PaillierBankSum,
    PaillierCoordinatorSum,
    PlainSum,
    Sealed,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
MAX_PARTIES = 5
VALUES = {KIND_STATS: np.array([3.0, -1.5, 1e6]), KIND_WEIGHTS: np.linspace(-2, 2, 40),
          KIND_COUNTS: np.arange(30),
          KIND_GRADIENTS: np.arange(-20, 20) * 2.0**-30 + 0.25}


@pytest.fixture(scope="module")
def bank(paillier_pair) -> PaillierBankSum:
    return PaillierBankSum(paillier_pair[1], max_parties=MAX_PARTIES)


@pytest.fixture(scope="module")
def sealed(bank) -> dict[str, Sealed]:
    out = {f"paillier-{kind}": bank.seal(values, kind=kind, run_id="run-1", round=2)
           for kind, values in VALUES.items()}
    out.update({f"plain-{kind}": PlainSum().seal(values, kind=kind, run_id="run-1", round=2)
                for kind, values in VALUES.items()})
    return out


@settings(FUZZ, max_examples=250)
@given(kind=st.one_of(st.sampled_from(KINDS), st.text(max_size=8), st.integers()),
       scheme=st.one_of(st.text(max_size=12), st.binary(max_size=4), st.none()),
       length=st.one_of(st.integers(), st.floats(), st.booleans(), st.none()),
       parties=st.one_of(st.integers(), st.floats(), st.booleans(), st.none()),
       payload=st.one_of(st.binary(max_size=32), st.text(max_size=8), st.integers(0, 64)),
       version=st.one_of(st.just(1), st.integers(), st.text(max_size=3)))
def test_sealed_vectors_validate_their_fields(kind, scheme, length, parties, payload,
                                              version) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    assert Sealed(KINDS[0], "plain", 3, 1, b"\x00" * 24, 1).length == 3
    try:
        sealed = Sealed(kind, scheme, length, parties, payload, version)
    except FedCreditError:
        return
    assert sealed.kind in KINDS and isinstance(sealed.payload, bytes)
    assert isinstance(sealed.length, int) and sealed.length >= 0 and sealed.parties >= 1


@st.composite
def _malformed(draw: st.DrawFn, fuzz, valid: Sealed) -> Sealed:
    """A sealed vector with a mutated payload or mutated metadata."""
    if draw(st.booleans()):
        if valid.kind == KIND_STATS and valid.scheme != "plain":
            payload = draw(st.one_of(fuzz.json_like(json.loads(valid.payload)),
                                     fuzz.bytes_like(valid.payload)))
        else:
            payload = draw(fuzz.bytes_like(valid.payload, max_size=512))
        valid = replace(valid, payload=payload)
    if draw(st.booleans()):
        valid = replace(valid, length=draw(st.one_of(
            st.integers(0, 2 * valid.length + 2), st.integers(0, 2**64))))
    if draw(st.booleans()):
        valid = replace(valid, parties=draw(st.integers(1, 2 * MAX_PARTIES)))
    return valid


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_plain_open_and_combine_raise_only_named_errors(data, fuzz, sealed) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    received = [data.draw(_malformed(fuzz, sealed[f"plain-{kind}"]))
                for _ in range(data.draw(st.integers(1, 3)))]
    summer = PlainSum()
    # the valid input parses (a decoder refusing everything fails here)
    intact = sealed[f"plain-{kind}"]
    assert summer.open(intact, kind=kind, run_id="run-1", round=2).shape == (intact.length,)
    try:
        opened = summer.open(received[0], kind=kind, run_id="run-1", round=2)
        assert opened.shape == (received[0].length,)
        total = summer.combine(received, kind=kind, length=None, run_id="run-1", round=2)
        assert summer.open(total, kind=kind, run_id="run-1", round=2).shape == opened.shape
    except FedCreditError:
        return


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_paillier_open_raises_only_named_errors(data, fuzz, sealed, bank) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    received = data.draw(_malformed(fuzz, sealed[f"paillier-{kind}"]))
    # the valid input parses (a decoder refusing everything fails here)
    assert np.allclose(bank.open(sealed[f"paillier-{kind}"], kind=kind, run_id="run-1",
                                 round=2), VALUES[kind])
    try:
        opened = bank.open(received, kind=kind, run_id="run-1", round=2)
    except FedCreditError:
        return
    assert opened.shape == (received.length,) and np.isfinite(opened).all()


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_paillier_combine_raises_only_named_errors(data, fuzz, sealed, paillier_pair) -> None:
    coordinator = PaillierCoordinatorSum(paillier_pair[0], max_parties=MAX_PARTIES)
    kind = data.draw(st.sampled_from(KINDS))
    valid = sealed[f"paillier-{kind}"]
    received = [valid] * data.draw(st.integers(0, 2)) + [data.draw(_malformed(fuzz, valid))]
    # the valid input parses (a decoder refusing everything fails here)
    assert coordinator.combine([valid, valid], kind=kind, length=None, run_id="run-1",
                               round=2).parties == 2 * valid.parties
    try:
        total = coordinator.combine(received, kind=kind, length=None, run_id="run-1", round=2)
    except FedCreditError:
        return
    assert total.kind == kind and total.length == received[0].length
