"""Fuzz the Flower records a coordinator or a bank receives (``federation.wire.records``).

Records are built from every value type Flower lets through (ints of any size, NaN, bytes,
homogeneous lists...), including records of the wrong kind under a key.
"""

from __future__ import annotations

import json

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.ml.preprocess import FeatureLayout, LocalSchema, Preprocessor
from federation.run.config import RunConfig
from federation.steps.secure_sum import KIND_WEIGHTS, PlainSum, Sealed
from federation.wire.records import (
    KEY_METRICS,
    KEY_RELEASE,
    KEY_RELEASED_HIST,
    KEY_RUN,
    KEY_SCHEMA,
    KEY_SEALED,
    KEY_SIGNATURE,
    KEY_STEP,
    KEY_WEIGHTS,
    bank_of,
    layout_of,
    metrics_of,
    release_of,
    released_histograms_of,
    run_config_of,
    schema_of,
    sealed_of,
    sealed_to_record,
    signature_of,
    step_of,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
LAYOUT = FeatureLayout(("age", "income"), (("region", ("north", "south")), ("kind", ())))
PREP = Preprocessor(("age", "income"), (40.0, 5e3), (12.0, 2e3),
                    (("region", ("north", "south")),), 1000)
SCHEMA = {"numeric": ["age", "income"], "categorical": {"region": ["north", "south"]}}
SEALED = dict(sealed_to_record(PlainSum().seal(np.arange(3.0), kind=KIND_WEIGHTS,
                                               run_id="run-1", round=1)))
SIGNATURE = {"run-id": "run-1", "step": "train", "round": 3, "signature": b"\x01" * 64}
METRICS = {"bank": 1, "num-examples": 100, "auc": 0.7, "ks": 0.3}


def _content(key: str, values: dict, record_kind: str = "config") -> RecordDict:
    if record_kind == "metric":
        return RecordDict({key: MetricRecord(values)})
    return RecordDict({key: ConfigRecord(values)})


@st.composite
def _json_field(draw: st.DrawFn, fuzz, valid: dict, field: str, doc) -> dict:
    """A record whose ``field`` holds mutated JSON text, or a mutated record."""
    if draw(st.booleans()):
        return {**valid, field: draw(fuzz.json_text(doc))}
    return draw(fuzz.record_like(valid))


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_sealed_records_raise_only_named_errors(data, fuzz) -> None:
    values = data.draw(fuzz.record_like(SEALED))
    # the valid input parses (a decoder refusing everything fails here)
    assert sealed_to_record(sealed_of(_content(KEY_SEALED, SEALED))) == ConfigRecord(SEALED)
    kind = data.draw(st.sampled_from(["config", "config", "metric"]))
    try:
        content = _content(KEY_SEALED, values, kind)
    except (TypeError, ValueError):  # Flower refuses these values in a MetricRecord
        content = _content(KEY_SEALED, values)
    try:
        sealed = sealed_of(content)
    except FedCreditError:
        return
    assert isinstance(sealed, Sealed) and isinstance(sealed.payload, bytes)
    assert sealed_of(RecordDict({KEY_SEALED: sealed_to_record(sealed)})) == sealed


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_signature_records_raise_only_named_errors(data, fuzz) -> None:
    content = _content(KEY_SIGNATURE, data.draw(fuzz.record_like(SIGNATURE)))
    # the valid input parses (a decoder refusing everything fails here)
    assert signature_of(_content(KEY_SIGNATURE, SIGNATURE)).round == SIGNATURE["round"]
    if data.draw(st.integers(0, 9)) == 0:
        content = RecordDict({})
    try:
        claim = signature_of(content)
    except FedCreditError:
        return
    assert isinstance(claim.signature, bytes) and isinstance(claim.round, int)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_schema_records_raise_only_named_errors(data, fuzz) -> None:
    valid = {"schema": json.dumps(SCHEMA)}
    content = _content(KEY_SCHEMA, data.draw(_json_field(fuzz, valid, "schema", SCHEMA)))
    # the valid input parses (a decoder refusing everything fails here)
    assert list(schema_of(_content(KEY_SCHEMA, valid)).numeric) == SCHEMA["numeric"]
    try:
        schema = schema_of(content)
    except FedCreditError:
        return
    assert isinstance(schema, LocalSchema)
    assert all(isinstance(c, str) for c in schema.numeric)
    assert all(isinstance(v, str) for vocab in schema.categorical.values() for v in vocab)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_run_config_records_raise_only_named_errors(data, fuzz) -> None:
    valid = RunConfig().to_user_config()
    content = _content(KEY_RUN, data.draw(fuzz.record_like(valid)))
    # the valid input parses (a decoder refusing everything fails here)
    assert run_config_of(_content(KEY_RUN, valid)) == RunConfig()
    try:
        cfg = run_config_of(content)
    except FedCreditError:
        return
    assert RunConfig.from_user_config(cfg.to_user_config()) == cfg


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_step_records_and_layouts_raise_only_named_errors(data, fuzz) -> None:
    valid = {"run-id": "run-1", "round": 2, "layout": LAYOUT.to_json()}
    values = data.draw(_json_field(fuzz, valid, "layout", json.loads(LAYOUT.to_json())))
    # the valid input parses (a decoder refusing everything fails here)
    assert layout_of(step_of(_content(KEY_STEP, valid))) == LAYOUT
    try:
        step = step_of(_content(KEY_STEP, values))
        assert isinstance(step.run_id, str) and step.round >= 0
        layout = layout_of(step)
    except FedCreditError:
        return
    assert FeatureLayout.from_json(layout.to_json()) == layout
    assert layout.stats_length >= 1


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_metric_records_raise_only_named_errors(data, fuzz) -> None:
    values = data.draw(fuzz.record_like(METRICS, metric=True))
    # the valid input parses (a decoder refusing everything fails here)
    assert bank_of(_content(KEY_METRICS, METRICS, "metric")) == METRICS["bank"]
    assert metrics_of(_content(KEY_METRICS, METRICS, "metric"))["auc"] == METRICS["auc"]
    try:
        metrics = metrics_of(_content(KEY_METRICS, values, "metric"))
        bank = bank_of(_content(KEY_METRICS, values, "metric"))
    except FedCreditError:
        return
    assert bank >= 0 and int(metrics["num-examples"]) >= 0
    assert all(isinstance(float(v), float) for v in metrics.values())


@st.composite
def _arrays(draw: st.DrawFn) -> ArrayRecord:
    """Released weights: real arrays, or arrays whose bytes are garbage."""
    arrays = {}
    for index in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.bool_]))
            arrays[str(index)] = Array(np.zeros(draw(st.integers(0, 4)), dtype=dtype))
        else:
            arrays[str(index)] = Array(dtype="float64", shape=(2,), stype="numpy.ndarray",
                                       data=draw(st.binary(max_size=200)))
    return ArrayRecord(arrays)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_release_records_raise_only_named_errors(data, fuzz) -> None:
    valid = {"preprocessor": PREP.to_json()}
    release = data.draw(_json_field(fuzz, valid, "preprocessor", json.loads(PREP.to_json())))
    # the valid input parses (a decoder refusing everything fails here)
    intact = release_of(RecordDict({KEY_RELEASE: ConfigRecord(valid),
                                    KEY_WEIGHTS: ArrayRecord([np.arange(3.0)])}))
    assert intact is not None and intact[1] == PREP
    content = RecordDict({KEY_RELEASE: ConfigRecord(release)})
    weights = data.draw(st.sampled_from(["arrays", "config", "none"]))
    if weights == "arrays":
        content[KEY_WEIGHTS] = data.draw(_arrays())
    elif weights == "config":
        content[KEY_WEIGHTS] = ConfigRecord(release)
    try:
        released = release_of(content)
    except FedCreditError:
        return
    if released is not None:
        arrays, prep = released
        assert Preprocessor.from_json(prep.to_json()) == prep
        assert all(a.dtype.kind == "f" for a in arrays)


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_released_histogram_records_raise_only_named_errors(data, fuzz) -> None:
    record = data.draw(st.one_of(_arrays(), st.just(ArrayRecord(
        [np.arange(4, dtype=np.int64), np.ones(4, dtype=np.int64)])),
        st.lists(st.sampled_from([np.arange(3), -np.arange(3), np.arange(3.0),
                                  np.array([2**63], dtype=np.uint64), np.zeros((2, 2), int)]),
                 max_size=3).map(ArrayRecord),
        fuzz.record_like({"bad": [1, 2], "good": [3, 4]}).map(ConfigRecord)))
    # the valid input parses (a decoder refusing everything fails here)
    intact = released_histograms_of(RecordDict({KEY_RELEASED_HIST: ArrayRecord(
        [np.arange(4, dtype=np.int64), np.ones(4, dtype=np.int64)])}))
    assert intact is not None and intact[0].tolist() == [0, 1, 2, 3]
    try:
        released = released_histograms_of(RecordDict({KEY_RELEASED_HIST: record}))
    except FedCreditError:
        return
    bad, good = released
    assert bad.shape == good.shape and (bad >= 0).all() and (good >= 0).all()
