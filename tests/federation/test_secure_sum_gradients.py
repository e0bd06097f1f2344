"""The ``gradients`` kind: exact signed fixed point, so plain and Paillier sums equal the float64
sum of the banks' values bit for bit (what keeps federated trees equal to pooled ones)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from federation.errors import ConfigError
from federation.steps.gradient_grid import (
    GRADIENT_VALUE_BITS,
    GradientGridError,
    gradient_offset,
    gradient_slot_bits,
    gradient_units,
    gradients_from_units,
)
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_GRADIENTS,
    KINDS,
    PaillierBankSum,
    PaillierCoordinatorSum,
    PlainSum,
    Sealed,
)
from protocols.errors import PackingOverflowError, ProtocolError
from protocols.paillier.keys import generate_paillier_keypair

BITS = 30
MAX_PARTIES = 64
GRADIENT_OFFSET = gradient_offset(BITS)
LIMIT_UNITS = GRADIENT_OFFSET - 1  # the largest |v * 2**f| one contribution may have


@pytest.fixture(scope="module")
def keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_paillier_keypair(512, allow_insecure_test_key=True)


@pytest.fixture(scope="module")
def paillier(keypair) -> tuple[PaillierBankSum, PaillierCoordinatorSum]:
    public, private = keypair
    return (PaillierBankSum(private, max_parties=MAX_PARTIES, gradient_bits=BITS),
            PaillierCoordinatorSum(public, max_parties=MAX_PARTIES, gradient_bits=BITS))


def party(bank, k: int):
    """Bank ``k``'s side under the same key: a sum's contribution boxes must name distinct
    banks, so each vector of a test sum is sealed by another bank index."""
    if isinstance(bank, PaillierBankSum):
        return PaillierBankSum(bank.private_key, bank.max_parties,
                               gradient_bits=bank.gradient_bits, bank=k)
    return bank


def grid(units: list[int], bits: int = BITS) -> np.ndarray:
    return np.ldexp(np.asarray(units, dtype=np.float64), -bits)


def through(bank, coordinator, vectors: list[np.ndarray], *, run_id: str = "r",
            rnd: int = 3) -> np.ndarray:
    sealed = [party(bank, k).seal(v, kind=KIND_GRADIENTS, run_id=run_id, round=rnd)
              for k, v in enumerate(vectors)]
    combined = coordinator.combine(sealed, kind=KIND_GRADIENTS, length=None, run_id=run_id,
                                   round=rnd)
    assert combined.parties == len(vectors)
    return bank.open(combined, kind=KIND_GRADIENTS, run_id=run_id, round=rnd)


def float64_sum(vectors: list[np.ndarray]) -> np.ndarray:
    total = np.zeros_like(vectors[0])
    for v in vectors:
        total = total + v
    return total


def test_gradients_is_a_kind() -> None:
    assert KIND_GRADIENTS == "gradients" and KIND_GRADIENTS in KINDS
    assert Sealed(KIND_GRADIENTS, "plain", 0, 1, b"").kind == KIND_GRADIENTS


def unit_vectors(bits: int) -> st.SearchStrategy[list[list[int]]]:
    limit = gradient_offset(bits) - 1
    return st.integers(1, 4).flatmap(lambda n: st.lists(
        st.lists(st.integers(-limit, limit), min_size=n, max_size=n), min_size=1, max_size=6))


@settings(max_examples=12, deadline=None)
@given(st.integers(8, 30).flatmap(lambda b: st.tuples(unit_vectors(b), st.just(b))))
def test_paillier_and_plain_sums_equal_the_float64_sum_bit_for_bit(
        paillier, case: tuple[list[list[int]], int]) -> None:
    parties_units, bits = case
    bank, _ = paillier
    bank_f = PaillierBankSum(bank.private_key, max_parties=MAX_PARTIES, gradient_bits=bits)
    coordinator = PaillierCoordinatorSum(bank.public_key, max_parties=MAX_PARTIES,
                                         gradient_bits=bits)
    vectors = [grid(u, bits) for u in parties_units]
    expected = float64_sum(vectors)
    assert np.array_equal(np.ldexp(expected, bits),
                          np.sum(np.asarray(parties_units, dtype=object), axis=0).astype(float))
    got = through(bank_f, coordinator, vectors)
    assert got.dtype == np.float64 and got.tobytes() == expected.tobytes()
    plain = PlainSum(gradient_bits=bits)
    assert through(plain, plain, vectors).tobytes() == expected.tobytes()


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=30),
       st.integers(2, 8))
def test_rounded_gradients_round_trip_for_several_parties(paillier, values: list[float],
                                                           parties: int) -> None:
    bank, coordinator = paillier
    base = np.round(np.ldexp(np.asarray(values), BITS))
    vectors = [grid(list(base * (k + 1) % 2**40 - 2**39)) for k in range(parties)]
    expected = float64_sum(vectors)
    assert through(bank, coordinator, vectors).tobytes() == expected.tobytes()


def test_values_at_the_range_limit_and_an_offset_total_past_2_53(keypair) -> None:
    public, private = keypair
    bank = PaillierBankSum(private, max_parties=128, gradient_bits=BITS)
    coordinator = PaillierCoordinatorSum(public, max_parties=128, gradient_bits=BITS)
    parties = 100  # offset total 100 * 2**47 > 2**53, slot sums up to 100 * (2**48 - 1)
    assert parties * GRADIENT_OFFSET > 2**53
    vectors = [grid([LIMIT_UNITS if k < 64 else 0, -LIMIT_UNITS if k < 64 else 0,
                     LIMIT_UNITS if k % 2 else -LIMIT_UNITS, 1 - 2 * (k % 2), 0])
               for k in range(parties)]
    expected = float64_sum(vectors)
    got = through(bank, coordinator, vectors)
    assert got.tobytes() == expected.tobytes()
    assert np.ldexp(got, BITS).tolist() == [64 * LIMIT_UNITS, -64 * LIMIT_UNITS, 0, 0, 0]
    with pytest.raises(GradientGridError, match="lower --gradient-bits"):
        through(bank, coordinator, [grid([LIMIT_UNITS])] * parties)  # 2**53.6 units


def test_a_sum_float64_cannot_hold_is_refused() -> None:
    assert gradients_from_units(np.array([2**53 - 1]), gradient_bits=BITS)[0] == \
        np.ldexp(float(2**53 - 1), -BITS)
    with pytest.raises(GradientGridError, match="lower --gradient-bits"):
        gradients_from_units(np.array([-(2**53)]), gradient_bits=BITS)


def test_a_plain_sum_beyond_exact_float64_is_refused() -> None:
    plain = PlainSum(gradient_bits=BITS)
    big = grid([LIMIT_UNITS])
    sealed = Sealed(KIND_GRADIENTS, "plain", 1, 80, (big * 80).tobytes())
    with pytest.raises(GradientGridError):
        plain.open(sealed, kind=KIND_GRADIENTS, run_id="r", round=1)
    off = Sealed(KIND_GRADIENTS, "plain", 1, 1, np.array([2.0**-31]).tobytes())
    with pytest.raises(GradientGridError, match="gradient-bits"):
        plain.open(off, kind=KIND_GRADIENTS, run_id="r", round=1)


BAD_VALUES = [
    pytest.param(2.0**-(BITS + 1), id="off-grid"),
    pytest.param(0.1, id="not-dyadic"),
    pytest.param(np.ldexp(float(GRADIENT_OFFSET), -BITS), id="at-limit"),
    pytest.param(-np.ldexp(float(GRADIENT_OFFSET), -BITS), id="at-minus-limit"),
    pytest.param(1e300, id="huge"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(float("-inf"), id="minus-inf"),
]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_values_are_refused_by_both_schemes(paillier, value: float) -> None:
    bank, _ = paillier
    vector = np.array([0.5, value, -0.25])
    for scheme in (bank, PlainSum(gradient_bits=BITS)):
        with pytest.raises(GradientGridError, match="lower --gradient-bits") as info:
            scheme.seal(vector, kind=KIND_GRADIENTS, run_id="r", round=1)
        assert "index 1" in str(info.value) and "\n" not in str(info.value)
    assert issubclass(GradientGridError, ProtocolError)


def test_gradient_units_are_exact_integers() -> None:
    units = gradient_units(grid([LIMIT_UNITS, -LIMIT_UNITS, 0, 7]), gradient_bits=BITS)
    assert units.dtype == np.int64 and units.tolist() == [LIMIT_UNITS, -LIMIT_UNITS, 0, 7]


@pytest.mark.parametrize("bits", [0, 31, 53, True, 30.0])
def test_unusable_gradient_bits_are_refused(keypair, bits) -> None:
    with pytest.raises(ConfigError, match="gradient-bits"):
        PlainSum(gradient_bits=bits)
    with pytest.raises(ConfigError, match="gradient-bits"):
        PaillierBankSum(keypair[1], max_parties=4, gradient_bits=bits)


def test_the_codec_is_public_and_the_same_on_both_sides(paillier) -> None:
    bank, coordinator = paillier
    codec = coordinator.codec(KIND_GRADIENTS)
    assert codec == bank.codec(KIND_GRADIENTS) and codec.integer_mode
    assert codec.bits == gradient_slot_bits(BITS) == BITS + GRADIENT_VALUE_BITS + 1
    assert codec.max_parties == MAX_PARTIES
    assert codec != coordinator.codec(KIND_COUNTS)


def test_paillier_sealing_hides_values_and_binds_the_scheme(paillier) -> None:
    bank, _ = paillier
    values = grid([5, -5, 2**40])
    sealed = bank.seal(values, kind=KIND_GRADIENTS, run_id="r", round=1)
    assert sealed.scheme == bank.scheme and sealed.length == 3 and sealed.parties == 1
    assert values.tobytes() not in sealed.payload


def test_combine_refuses_another_kind_or_length(paillier) -> None:
    bank, coordinator = paillier
    grads = bank.seal(grid([1, 2, 3]), kind=KIND_GRADIENTS, run_id="r", round=1)
    counts = bank.seal(np.array([1, 2, 3]), kind=KIND_COUNTS, run_id="r", round=1)
    short = bank.seal(grid([1, 2]), kind=KIND_GRADIENTS, run_id="r", round=1)
    with pytest.raises(ProtocolError, match="expected a sealed 'gradients'"):
        coordinator.combine([grads, counts], kind=KIND_GRADIENTS, length=None, run_id="r",
                            round=1)
    with pytest.raises(ProtocolError, match="3 values|2 values"):
        coordinator.combine([grads, short], kind=KIND_GRADIENTS, length=None, run_id="r",
                            round=1)
    with pytest.raises(ProtocolError, match="expected 4"):
        coordinator.combine([grads], kind=KIND_GRADIENTS, length=4, run_id="r", round=1)
    plain = PlainSum(gradient_bits=BITS)
    p_grads = plain.seal(grid([1, 2, 3]), kind=KIND_GRADIENTS, run_id="r", round=1)
    p_short = plain.seal(grid([1, 2]), kind=KIND_GRADIENTS, run_id="r", round=1)
    with pytest.raises(ProtocolError):
        plain.combine([p_grads, p_short], kind=KIND_GRADIENTS, length=None, run_id="r", round=1)
    with pytest.raises(ProtocolError):
        plain.combine([p_grads], kind=KIND_COUNTS, length=None, run_id="r", round=1)


def test_a_sum_of_more_parties_than_the_codec_allows_is_refused(keypair) -> None:
    public, private = keypair
    bank = PaillierBankSum(private, max_parties=2, gradient_bits=BITS)
    coordinator = PaillierCoordinatorSum(public, max_parties=2)
    sealed = [party(bank, k).seal(grid([1]), kind=KIND_GRADIENTS, run_id="r", round=1)
              for k in range(3)]
    with pytest.raises(PackingOverflowError):
        coordinator.combine(sealed, kind=KIND_GRADIENTS, length=None, run_id="r", round=1)


def test_opening_checks_the_run_and_round(paillier) -> None:
    bank, coordinator = paillier
    combined = coordinator.combine([bank.seal(grid([1]), kind=KIND_GRADIENTS, run_id="r",
                                              round=1)],
                                   kind=KIND_GRADIENTS, length=None, run_id="r", round=1)
    with pytest.raises(ProtocolError):
        bank.open(combined, kind=KIND_GRADIENTS, run_id="r", round=2)
    with pytest.raises(ProtocolError):
        bank.open(combined, kind=KIND_GRADIENTS, run_id="other", round=1)
