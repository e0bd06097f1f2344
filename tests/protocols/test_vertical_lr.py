"""Two-key vertical logistic regression: encodings, bucket product, messages, steps, driver."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from protocols.errors import (
    InvalidCiphertextError,
    KeyMismatchError,
    MalformedMessageError,
    PackingOverflowError,
    StaleRoundError,
    UnexpectedMessageError,
    VectorLengthError,
)
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import encrypt_packed
from protocols.paillier.keys import generate_paillier_keypair
from protocols.paillier.matvec import add_plaintexts, encrypted_matvec, pack_ciphertexts
from protocols.vertical_lr.config import (
    min_batch_rows,
    vertical_config_from_bytes,
    vertical_config_to_bytes,
)
from protocols.vertical_lr.encoding import (
    FEATURE_LIMIT,
    MASK_STATISTICAL_BITS,
    VALUE_FRAC_BITS,
    VALUE_LIMIT,
    decode_fixed,
    dequantize_features,
    draw_slot_masks,
    encode_fixed,
    gradient_slot_layout,
    mask_plaintexts,
    pack_slots,
    plain_matvec,
    quantize_features,
    to_signed,
    unmask_slots,
    unpack_slots,
)
from protocols.vertical_lr.local import train_vertical_lr_local
from protocols.vertical_lr.messages import (
    KIND_BANK_RESIDUALS,
    KIND_CENTER_GRADIENT_OPENED,
    KIND_CENTER_PARTIALS,
    MaskedGradientValues,
    VerticalCiphertexts,
    masked_values_from_bytes,
    masked_values_to_bytes,
    parse_vertical_message,
    vertical_ciphertexts_from_bytes,
    vertical_ciphertexts_to_bytes,
)
from protocols.vertical_lr.scoring import bank_score_step, center_score_step, partial_scores
from protocols.vertical_lr.steps import (
    SUM_SCALE,
    VerticalLRConfig,
    bank_gradient_step,
    bank_open_center_gradient,
    bank_residual_step,
    bank_update_step,
    center_gradient_step,
    center_open_bank_gradient,
    center_partial_step,
    center_update_step,
    initial_state,
    make_bank_party,
    make_center_party,
)

RUN = "run-v"
FP = "ab" * 32


def _decrypt_signed(cts: list[int], priv) -> list[int]:
    n = int(priv.public_key.n)
    return [to_signed(m, n) for m in decrypt_raw_many(cts, priv, processes=1)]


# ------------------------------------------------------------------ encodings
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-VALUE_LIMIT, VALUE_LIMIT, allow_nan=False), min_size=1, max_size=6),
       st.integers(0, 2**32))
def test_fixed_point_encrypt_decrypt_round_trip(small_keypair, values, seed) -> None:
    pub, priv = small_keypair
    n = int(pub.n)
    cts = encrypt_packed(encode_fixed(values, n), pub, rng=random.Random(seed))
    decoded = decode_fixed(decrypt_raw_many(cts, priv, processes=1), n)
    assert np.max(np.abs(decoded - np.array(values))) <= 2.0 ** -(VALUE_FRAC_BITS + 1)


@pytest.mark.parametrize("bad", [[float("nan")], [float("inf")], [VALUE_LIMIT * 2],
                                 [-VALUE_LIMIT * 2]])
def test_encode_refuses_values_that_would_not_fit(bad) -> None:
    with pytest.raises(PackingOverflowError, match="learning rate"):
        encode_fixed(bad, 2**512 + 1)


def test_decode_refuses_wrapped_values() -> None:
    n = 2**256 + 297
    assert decode_fixed(encode_fixed([-1.5, 2.25], n), n).tolist() == [-1.5, 2.25]
    with pytest.raises(PackingOverflowError, match="another key"):
        decode_fixed([n // 3], n)
    with pytest.raises(PackingOverflowError):
        decode_fixed([5 << 40], n, bound=1 << 40)


def test_quantize_features_rounds_and_clips() -> None:
    x = np.array([[0.0, 1.0, -1.0], [0.5 / 64, 11.0, -20.0]])
    assert quantize_features(x).tolist() == [[0, 64, -64], [0, FEATURE_LIMIT, -FEATURE_LIMIT]]
    assert dequantize_features(quantize_features(x))[1, 1] == 10.0
    with pytest.raises(ValueError, match="impute"):
        quantize_features(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        quantize_features(np.zeros(3))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=1, max_size=40))
def test_score_slots_round_trip(values) -> None:
    n = 2**512 + 75
    unpacked = unpack_slots(pack_slots(values, n), len(values), n)
    assert np.max(np.abs(unpacked - np.array(values))) <= 2.0 ** -(VALUE_FRAC_BITS + 1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_slot_masks_round_trip_and_hide_the_sums(rows, data) -> None:
    n = 2**2048 - 159
    layout = gradient_slot_layout(rows, n)
    assert layout.slot_bits == layout.bound_bits + MASK_STATISTICAL_BITS + 1
    limit = 2**layout.bound_bits - 1
    sums = data.draw(st.lists(st.integers(-limit, limit), min_size=1, max_size=25))
    masks = draw_slot_masks(len(sums), layout, random.Random(data.draw(st.integers(0, 99))))
    plaintexts = mask_plaintexts(masks, layout)
    width, per = layout.slot_bits, layout.per_plaintext
    opened = [(p + sum(v << (width * k) for k, v in enumerate(sums[i * per:(i + 1) * per])))
              % n for i, p in enumerate(plaintexts)]
    assert all(0 <= p < n for p in opened) and len(opened) == layout.n_plaintexts(len(sums))
    assert unmask_slots(opened, masks, layout) == sums
    slot_values = [(opened[i // per] >> (width * (i % per))) % (1 << width)
                   for i in range(len(sums))]
    assert all(v > limit for v in slot_values)  # never the sum itself


def test_slot_unmasking_refuses_foreign_values() -> None:
    layout = gradient_slot_layout(512, 2**2048 - 159)
    assert (layout.per_plaintext, layout.n_plaintexts(20)) == (10, 2)
    masks = draw_slot_masks(3, layout, random.Random(1))
    (packed,) = mask_plaintexts(masks, layout)
    with pytest.raises(PackingOverflowError, match="beyond its slots"):
        unmask_slots([packed | 1 << (3 * layout.slot_bits)], masks, layout)
    with pytest.raises(PackingOverflowError, match="out of range"):
        unmask_slots([packed + (1 << (layout.bound_bits + 1))], masks, layout)
    with pytest.raises(PackingOverflowError, match="plaintexts for"):
        unmask_slots([packed, packed], masks, layout)
    with pytest.raises(PackingOverflowError, match="larger key"):
        gradient_slot_layout(512, 2**150 + 1)


# ------------------------------------------------------------------ homomorphic maths
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 24).flatmap(lambda rows: st.tuples(
    st.lists(st.lists(st.sampled_from([0, 1, -1, 2, -3, 64, -64, 640, -640, 37]) |
                      st.integers(-FEATURE_LIMIT, FEATURE_LIMIT), min_size=3, max_size=3),
             min_size=rows, max_size=rows),
    st.lists(st.integers(-2**60, 2**60), min_size=rows, max_size=rows))))
def test_bucket_product_equals_plain_matvec(small_keypair, case) -> None:
    pub, priv = small_keypair
    xq, values = np.array(case[0], dtype=np.int64), case[1]
    cts = encrypt_packed([v % pub.n for v in values], pub, rng=random.Random(3))
    assert _decrypt_signed(encrypted_matvec(xq, cts, pub), priv) == plain_matvec(xq, values)


def test_bucket_product_matches_float_product_within_quantisation(small_keypair) -> None:
    pub, priv = small_keypair
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(300, 4)), rng.normal(size=300)
    cts = encrypt_packed(encode_fixed(v, int(pub.n)), pub)
    sums = np.array(_decrypt_signed(encrypted_matvec(quantize_features(x), cts, pub), priv))
    approx = sums / 2.0 ** (6 + VALUE_FRAC_BITS)
    bound = np.abs(v).sum() * 2.0 ** -7 + 300 * 2.0 ** -20
    assert np.max(np.abs(approx - x.T @ v)) <= bound
    np.testing.assert_allclose(approx, dequantize_features(quantize_features(x)).T @ v,
                               atol=1e-6)


def test_add_plaintexts_and_shape_check(small_keypair) -> None:
    pub, priv = small_keypair
    cts = encrypt_packed([5, pub.n - 2], pub)
    assert _decrypt_signed(add_plaintexts(cts, [-7, 9], pub), priv) == [-2, 7]
    with pytest.raises(ValueError, match="shape"):
        encrypted_matvec(np.zeros((3, 2), dtype=np.int64), cts, pub)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=7), st.integers(1, 3))
def test_pack_ciphertexts_shifts_each_value_into_its_slot(small_keypair, values, per) -> None:
    pub, priv = small_keypair
    packed = pack_ciphertexts(encrypt_packed(values, pub), 48, per, pub)
    expected = [sum(v << (48 * k) for k, v in enumerate(values[i:i + per]))
                for i in range(0, len(values), per)]
    assert [priv.raw_decrypt(c) for c in packed] == expected


# ------------------------------------------------------------------ messages
def _cipher_msg(pub, kind=KIND_BANK_RESIDUALS, epoch=1, batch=2, values=(1, 2, 3)):
    from protocols.paillier.keys import key_fingerprint
    cts = tuple(encrypt_packed(list(values), pub))
    return VerticalCiphertexts(kind, key_fingerprint(pub), RUN, epoch, batch, len(cts), cts)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["bank-residuals", "center-partials", "center-masked-gradient",
                        "bank-masked-gradient", "center-scores"]),
       st.text(max_size=20), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.lists(st.integers(1, 2**1024), min_size=1, max_size=5))
def test_ciphertext_message_bytes_round_trip(kind, run_id, epoch, batch, cts) -> None:
    msg = VerticalCiphertexts(kind, FP, run_id, epoch, batch, len(cts), tuple(cts))
    assert parse_vertical_message(vertical_ciphertexts_to_bytes(msg)) == msg


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["center-gradient-opened", "bank-gradient-opened"]),
       st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**600), min_size=1, max_size=5))
def test_masked_values_bytes_round_trip(kind, epoch, values) -> None:
    msg = MaskedGradientValues(kind, FP, RUN, epoch, 0, tuple(values))
    assert parse_vertical_message(masked_values_to_bytes(msg)) == msg


def test_ciphertext_validation_errors(small_keypair, other_small_keypair) -> None:
    pub, _ = small_keypair
    data = vertical_ciphertexts_to_bytes(_cipher_msg(pub))
    good = dict(public_key=pub, kind=KIND_BANK_RESIDUALS, run_id=RUN, epoch=1, batch=2,
                length=3)
    assert vertical_ciphertexts_from_bytes(data, **good).length == 3
    cases = [({"public_key": other_small_keypair[0]}, KeyMismatchError),
             ({"epoch": 0}, StaleRoundError), ({"batch": 3}, StaleRoundError),
             ({"run_id": "other"}, StaleRoundError), ({"length": 4}, VectorLengthError),
             ({"kind": KIND_CENTER_PARTIALS}, UnexpectedMessageError),
             ({"kind": KIND_CENTER_GRADIENT_OPENED}, UnexpectedMessageError)]
    for change, error in cases:
        with pytest.raises(error):
            vertical_ciphertexts_from_bytes(data, **(good | change))
    from protocols.paillier.keys import key_fingerprint
    for bad in (0, pub.n, pub.nsquare):
        msg = VerticalCiphertexts(KIND_BANK_RESIDUALS, key_fingerprint(pub), RUN, 1, 2, 1, (bad,))
        with pytest.raises(InvalidCiphertextError):
            vertical_ciphertexts_from_bytes(vertical_ciphertexts_to_bytes(msg),
                                            **(good | {"length": 1}))


def test_masked_values_validation_errors(small_keypair, other_small_keypair) -> None:
    from protocols.paillier.keys import key_fingerprint
    pub, _ = small_keypair
    msg = MaskedGradientValues(KIND_CENTER_GRADIENT_OPENED, key_fingerprint(pub), RUN, 0, 0,
                               (1, 2))
    good = dict(public_key=pub, kind=KIND_CENTER_GRADIENT_OPENED, run_id=RUN, epoch=0,
                batch=0, length=2)
    data = masked_values_to_bytes(msg)
    assert masked_values_from_bytes(data, **good) == msg
    for change, error in [({"public_key": other_small_keypair[0]}, KeyMismatchError),
                          ({"batch": 1}, StaleRoundError), ({"length": 3}, VectorLengthError),
                          ({"kind": "bank-gradient-opened"}, UnexpectedMessageError)]:
        with pytest.raises(error):
            masked_values_from_bytes(data, **(good | change))
    too_big = masked_values_to_bytes(MaskedGradientValues(
        KIND_CENTER_GRADIENT_OPENED, key_fingerprint(pub), RUN, 0, 0, (1, pub.n)))
    with pytest.raises(MalformedMessageError, match=">= n"):
        masked_values_from_bytes(too_big, **good)
    with pytest.raises(UnexpectedMessageError):
        masked_values_from_bytes(vertical_ciphertexts_to_bytes(_cipher_msg(pub)), **good)


def test_malformed_bytes_raise_malformed_message_error(small_keypair) -> None:
    data = vertical_ciphertexts_to_bytes(_cipher_msg(small_keypair[0]))
    for cut in (0, 3, 10, 40, 80, len(data) - 1):
        with pytest.raises(MalformedMessageError):
            parse_vertical_message(data[:cut])
    for bad in (data + b"\0", b"XXXX" + data[4:], data[:6] + b"\x7f" + data[7:]):
        with pytest.raises(MalformedMessageError):
            parse_vertical_message(bad)
    with pytest.raises(TypeError):
        parse_vertical_message("text")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_parse_silently(small_keypair, data) -> None:
    valid = _cipher_msg(small_keypair[0])
    assert parse_vertical_message(vertical_ciphertexts_to_bytes(valid)) == valid
    blob = b"FCVL\x00\x01" + data
    try:
        parsed = parse_vertical_message(blob)
    except MalformedMessageError:
        return
    # whatever parses is a well-formed message that survives its own encoder unchanged
    encode = (masked_values_to_bytes if isinstance(parsed, MaskedGradientValues)
              else vertical_ciphertexts_to_bytes)
    assert parse_vertical_message(encode(parsed)) == parsed


def test_message_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="one ciphertext per value"):
        VerticalCiphertexts(KIND_BANK_RESIDUALS, FP, RUN, 0, 0, 2, (5,))
    with pytest.raises(ValueError, match="kind"):
        VerticalCiphertexts("bank-secrets", FP, RUN, 0, 0, 1, (5,))
    with pytest.raises(ValueError, match="epoch"):
        VerticalCiphertexts(KIND_BANK_RESIDUALS, FP, RUN, -1, 0, 1, (5,))
    with pytest.raises(ValueError, match="fingerprint"):
        VerticalCiphertexts(KIND_BANK_RESIDUALS, "xy", RUN, 0, 0, 1, (5,))


# ------------------------------------------------------------------ protocol steps
@pytest.fixture(scope="module")
def parties(small_keypair, other_small_keypair):
    """A bank (key 1) and a center (key 2) on 96 rows, 3 + 2 features."""
    rng = np.random.default_rng(5)
    xb, xc = rng.normal(size=(96, 3)), rng.normal(size=(96, 2))
    y = (rng.random(96) < 0.4).astype(float)
    config = VerticalLRConfig(RUN, 96, 3, 2, batch_size=48, learning_rate=0.3, l2=0.1)
    bank = make_bank_party(xb, y, config=config, private_key=small_keypair[1],
                           peer_public_key=other_small_keypair[0])
    center = make_center_party(xc, config=config, private_key=other_small_keypair[1],
                               peer_public_key=small_keypair[0])
    return bank, center


def _one_batch(bank, center, sb, sc, epoch=0, batch=0, rng=None):
    res_b, sec_b = bank_residual_step(bank, sb, epoch=epoch, batch=batch, rng=rng)
    par_c, sec_c = center_partial_step(center, sc, epoch=epoch, batch=batch, rng=rng)
    grad_c, sec_c = center_gradient_step(center, sec_c, res_b, rng=rng)
    grad_b, sec_b = bank_gradient_step(bank, sec_b, par_c, rng=rng)
    open_c = bank_open_center_gradient(bank, grad_c, epoch=epoch, batch=batch)
    open_b = center_open_bank_gradient(center, grad_b, epoch=epoch, batch=batch)
    new_b = bank_update_step(bank, sb, sec_b, open_b)
    new_c = center_update_step(center, sc, sec_c, open_c)
    return new_b, new_c, (sec_b, sec_c, open_b, open_c)


def test_one_batch_equals_plaintext_taylor_step(parties) -> None:
    bank, center = parties
    sb = initial_state(bank)
    sc = initial_state(center)
    sb = type(sb)(sb.role, np.array([0.1, 0.2, -0.3, 0.4]))
    sc = type(sc)(sc.role, np.array([-0.5, 0.25]))
    new_b, new_c, _ = _one_batch(bank, center, sb, sc, epoch=1, batch=1)
    rows = bank.config.batch_rows(1, 1)
    xb, xc = dequantize_features(bank.features[rows]), dequantize_features(center.features[rows])
    d = 0.25 * (xb @ sb.weights + xc @ sc.weights) + 0.5 - bank.labels[rows]
    gb = xb.T @ d / len(rows) + 0.1 * np.r_[0.0, sb.weights[1:]]
    gc = xc.T @ d / len(rows) + 0.1 * sc.weights
    np.testing.assert_allclose(new_b.weights, sb.weights - 0.3 * gb, atol=1e-9)
    np.testing.assert_allclose(new_c.weights, sc.weights - 0.3 * gc, atol=1e-9)
    assert (new_b.updates, new_c.updates) == (1, 1)


def test_masks_hide_the_gradient_sums_and_unmask_correctly(parties) -> None:
    bank, center = parties
    sb, sc = initial_state(bank), initial_state(center)
    _, _, (sec_b, sec_c, open_b, open_c) = _one_batch(bank, center, sb, sc)
    _, _, (_, _, open_b2, open_c2) = _one_batch(bank, center, sb, sc)
    rows = bank.config.batch_rows(0, 0)
    d = 0.5 - bank.labels[rows]  # zero weights: u = 0
    true_b = [round(s * SUM_SCALE) for s in dequantize_features(bank.features[rows]).T @ d]
    true_c = [round(s * SUM_SCALE) for s in dequantize_features(center.features[rows]).T @ d]
    layout_b = gradient_slot_layout(len(rows), int(center.public_key.n))  # under PK_C
    layout_c = gradient_slot_layout(len(rows), int(bank.public_key.n))  # under PK_B
    for opened, layout, true in ((open_b, layout_b, true_b), (open_c, layout_c, true_c)):
        width = layout.slot_bits
        slots = [(opened.values[i // layout.per_plaintext] >> (width * (i % layout.per_plaintext)))
                 % (1 << width) for i in range(len(true))]
        assert all(slot != t and slot > 2**layout.bound_bits for slot, t in zip(slots, true, strict=True))
    assert open_b.values != open_b2.values and open_c.values != open_c2.values
    assert unmask_slots(open_b.values, sec_b.masks, layout_b) == true_b
    assert unmask_slots(open_c.values, sec_c.masks, layout_c) == true_c
    assert "secret" in repr(sec_b) and "secret" in repr(bank)


def test_steps_refuse_messages_of_another_batch_or_role(parties) -> None:
    bank, center = parties
    sb, sc = initial_state(bank), initial_state(center)
    res_b, _ = bank_residual_step(bank, sb, epoch=0, batch=1)
    _, sec_c = center_partial_step(center, sc, epoch=0, batch=0)
    with pytest.raises(StaleRoundError):
        center_gradient_step(center, sec_c, res_b)
    with pytest.raises(UnexpectedMessageError):
        center_gradient_step(center, sec_c, _cipher_msg(bank.public_key, KIND_CENTER_PARTIALS,
                                                        0, 0, [1] * 48))
    with pytest.raises(ValueError, match="belongs to the bank"):
        bank_residual_step(center, sc, epoch=0, batch=0)
    with pytest.raises(ValueError, match="center's state"):
        bank_residual_step(bank, sc, epoch=0, batch=0)
    with pytest.raises(ValueError, match="gradient step before the update"):
        center_update_step(center, sc, sec_c, MaskedGradientValues(
            KIND_CENTER_GRADIENT_OPENED, FP, RUN, 0, 0, (1,)))
    with pytest.raises(ValueError, match="outside the schedule"):
        bank_residual_step(bank, sb, epoch=0, batch=2)


def test_diverged_weights_are_refused(parties) -> None:
    bank, _ = parties
    state = type(initial_state(bank))("bank", np.full(4, 1e9))
    with pytest.raises(PackingOverflowError, match="learning rate"):
        bank_residual_step(bank, state, epoch=0, batch=0)


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="too small"):
        VerticalLRConfig(RUN, 1000, 19, 4, batch_size=32, learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        VerticalLRConfig(RUN, 1000, 3, 2, batch_size=64, learning_rate=0.0)
    config = VerticalLRConfig(RUN, 1000, 3, 2, batch_size=64, learning_rate=0.1)
    batches = [config.batch_rows(2, b) for b in range(config.n_batches)]
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert min(len(b) for b in batches) >= 64
    assert not np.array_equal(config.batch_rows(0, 0), config.batch_rows(1, 0))


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=30), st.integers(200, 10**6), st.integers(0, 20), st.integers(1, 20),
       st.floats(1e-6, 10.0), st.floats(0.0, 1.0), st.integers(0, 2**63))
def test_config_bytes_round_trip(run_id, n_rows, n_bank, n_center, lr, l2, seed) -> None:
    config = VerticalLRConfig(run_id, max(n_rows, 400), n_bank, n_center,
                              batch_size=min_batch_rows(n_bank, n_center), learning_rate=lr,
                              l2=l2, schedule_seed=seed)
    assert vertical_config_from_bytes(vertical_config_to_bytes(config)) == config


def test_config_from_bytes_refuses_bad_input() -> None:
    good = vertical_config_to_bytes(VerticalLRConfig(RUN, 100, 2, 2, 64, 0.1))
    for bad in (b"", b"{}", b"\xff", good.replace(b'"batch_size":64', b'"batch_size":8'),
                good.replace(b'"n_rows":100', b'"n_rows":"100"'),
                good.replace(b'vertical-lr-config', b'other')):
        with pytest.raises(MalformedMessageError):
            vertical_config_from_bytes(bad)


def test_protected_scoring_equals_plaintext_logits(small_keypair) -> None:
    pub, priv = small_keypair
    rng = np.random.default_rng(2)
    xb, xc = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    wb, wc = rng.normal(size=4), rng.normal(size=2)
    msg = center_score_step(xc, wc, bank_public_key=pub, run_id=RUN, batch=3)
    assert len(msg.ciphertexts) == 3  # 7 slots per 512-bit plaintext
    wire = parse_vertical_message(vertical_ciphertexts_to_bytes(msg))
    logits = bank_score_step(xb, wb, wire, private_key=priv, run_id=RUN, batch=3)
    expected = partial_scores(xb, wb, intercept=True) + partial_scores(xc, wc, intercept=False)
    np.testing.assert_allclose(logits, expected, atol=1e-8)
    with pytest.raises(StaleRoundError):
        bank_score_step(xb, wb, wire, private_key=priv, run_id=RUN, batch=0)
    with pytest.raises(VectorLengthError):
        bank_score_step(xb[:10], wb, wire, private_key=priv, run_id=RUN, batch=3)


def test_one_batch_and_scoring_with_2048_bit_keys(big_keypair) -> None:
    other = generate_paillier_keypair(2048)
    rng = np.random.default_rng(9)
    xb, xc, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1)), rng.integers(0, 2, 64)
    config = VerticalLRConfig(RUN, 64, 2, 1, batch_size=64, learning_rate=0.5)
    bank = make_bank_party(xb, y, config=config, private_key=big_keypair[1],
                           peer_public_key=other[0])
    center = make_center_party(xc, config=config, private_key=other[1],
                               peer_public_key=big_keypair[0])
    new_b, new_c, _ = _one_batch(bank, center, initial_state(bank), initial_state(center))
    xbq, xcq = dequantize_features(bank.features), dequantize_features(center.features)
    d = 0.5 - y
    np.testing.assert_allclose(new_b.weights, -0.5 * xbq.T @ d / 64, atol=1e-9)
    np.testing.assert_allclose(new_c.weights, -0.5 * xcq.T @ d / 64, atol=1e-9)
    msg = center_score_step(xc, new_c.weights, bank_public_key=big_keypair[0], run_id=RUN)
    assert len(msg.ciphertexts) == 3  # 31 slots per 2048-bit plaintext
    logits = bank_score_step(xb, new_b.weights, msg, private_key=big_keypair[1], run_id=RUN)
    np.testing.assert_allclose(logits, xbq @ new_b.weights + xcq @ new_c.weights, atol=1e-8)


# ------------------------------------------------------------------ end to end
def _synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    xb, xc = rng.normal(size=(n, 4)), rng.normal(size=(n, 3))
    logit = xb @ np.array([0.8, -0.5, 0.3, 0.0]) + xc @ np.array([0.9, -0.7, 0.4]) - 1.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return xb, xc, y


def test_local_driver_matches_plain_lr_and_beats_bank_only() -> None:
    keys = (generate_paillier_keypair(1024, allow_insecure_test_key=True),
            generate_paillier_keypair(1024, allow_insecure_test_key=True))
    xb, xc, y = _synthetic(2000, 0)
    tb, tc, ty = _synthetic(4000, 1)
    result = train_vertical_lr_local(xb, y, xc, epochs=3, batch_size=200, learning_rate=0.5,
                                     keys=keys, seed=4, rng=random.Random(7))
    msg = center_score_step(tc, result.center_weights, bank_public_key=keys[0][0], run_id=RUN)
    logits = bank_score_step(tb, result.bank_weights, msg, private_key=keys[0][1], run_id=RUN)
    auc = roc_auc_score(ty, logits)
    joined = LogisticRegression().fit(np.hstack([xb, xc]), y)
    auc_joined = roc_auc_score(ty, joined.decision_function(np.hstack([tb, tc])))
    bank_only = LogisticRegression().fit(xb, y)
    auc_bank = roc_auc_score(ty, bank_only.decision_function(tb))
    assert abs(auc - auc_joined) <= 0.005
    assert auc >= auc_bank + 0.05
    assert len(result.epochs) == 3 and result.epochs[0]["critical_path"] > 0
    assert result.message_bytes[KIND_BANK_RESIDUALS] > 3 * 2000 * 200
    # identical to plaintext Taylor-loss SGD on the same schedule
    config = result.config
    xbq = np.hstack([np.ones((2000, 1)), dequantize_features(quantize_features(xb))])
    xcq = dequantize_features(quantize_features(xc))
    wb, wc = np.zeros(5), np.zeros(3)
    for epoch in range(3):
        for batch in range(config.n_batches):
            rows = config.batch_rows(epoch, batch)
            d = 0.25 * (xbq[rows] @ wb + xcq[rows] @ wc) + 0.5 - y[rows]
            wb, wc = wb - 0.5 * xbq[rows].T @ d / len(rows), wc - 0.5 * xcq[rows].T @ d / len(rows)
    np.testing.assert_allclose(result.bank_weights, wb, atol=1e-8)
    np.testing.assert_allclose(result.center_weights, wc, atol=1e-8)
