"""Vertical step records from another node: every accessor returns its type or raises a
named error; the bank's IV table parser likewise."""

from __future__ import annotations

from flwr.app import ConfigRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.wire.records import StepFields
from protocols.errors import FedCreditError
from server.vertical import parse_iv

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=300)
SCALARS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=8),
                    st.binary(max_size=16), st.booleans())
VALUES = st.one_of(SCALARS, st.lists(st.integers(-5, 5), max_size=5),
                   st.lists(st.text(max_size=4), max_size=3))


@FUZZ
@given(st.dictionaries(st.sampled_from(["blob", "stage", "run-id", "auc", "hist_bad", "features"]),
                       VALUES, max_size=6))
def test_step_field_accessors_return_types_or_named_errors(values: dict) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    valid = StepFields(ConfigRecord({"blob": b"\x01", "stage": 2, "run-id": "r", "auc": 0.5,
                                     "hist_bad": [1, 2], "features": ["a"]}))
    assert (valid.blob("blob"), valid.int("stage"), valid.text("run-id"), valid.number("auc"),
            valid.counts("hist_bad"), valid.texts("features")) == (b"\x01", 2, "r", 0.5, [1, 2],
                                                                   ["a"])
    try:
        fields = StepFields(ConfigRecord(values))
    except (TypeError, ValueError):
        return  # Flower itself refuses to build such a record
    checks = [(fields.blob, "blob", bytes), (fields.int, "stage", int),
              (fields.text, "run-id", str), (fields.number, "auc", float),
              (fields.counts, "hist_bad", list), (fields.texts, "features", list)]
    for accessor, name, kind in checks:
        try:
            assert isinstance(accessor(name), kind)
        except FedCreditError:
            pass


@FUZZ
@given(st.one_of(st.text(max_size=60), st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10).map(lambda v: __import__("json").dumps(v))))
def test_iv_table_parser_ends_in_named_errors(text: str) -> None:
    # the valid input parses (a decoder refusing everything fails here)
    assert parse_iv('{"age": 0.25, "region": 0.0}') == {"age": 0.25, "region": 0.0}
    try:
        table = parse_iv(text)
    except FedCreditError:
        return
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in table.items())
