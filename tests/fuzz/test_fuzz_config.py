"""Fuzz run configs and the shared preprocessing documents (layout, preprocessor)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.ml.preprocess import FeatureLayout, Preprocessor
from federation.run.config import RunConfig
from federation.run.vertical_config import VerticalConfig
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
LAYOUT = FeatureLayout(("age", "income"), (("region", ("north", "south")), ("kind", ())))
PREP = Preprocessor(("age", "income"), (40.0, 5e3), (12.0, 2e3),
                    (("region", ("north", "south")),), 1000)


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_run_config_from_user_config_raises_only_named_errors(data, fuzz) -> None:
    valid = RunConfig(aggregation="paillier", drop_schedule="3:1,4;5:2").to_user_config()
    values = data.draw(st.one_of(
        fuzz.record_like(valid),
        fuzz.json_docs(valid),  # a checkpoint's JSON: None, nested lists and tables too
        st.dictionaries(st.sampled_from(sorted(valid)), fuzz.json_values, max_size=4)))
    # the valid input parses (a decoder refusing everything fails here)
    assert RunConfig.from_user_config(valid).to_user_config() == valid
    try:
        cfg = RunConfig.from_user_config(values)
    except FedCreditError:
        return
    assert RunConfig.from_user_config(cfg.to_user_config()) == cfg
    cfg.dropped_banks(3)


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_feature_layout_json_raises_only_named_errors(data, fuzz) -> None:
    text = data.draw(fuzz.json_text(json.loads(LAYOUT.to_json())))
    # the valid input parses (a decoder refusing everything fails here)
    assert FeatureLayout.from_json(LAYOUT.to_json()) == LAYOUT
    try:
        layout = FeatureLayout.from_json(text)
    except FedCreditError:
        return
    assert FeatureLayout.from_json(layout.to_json()) == layout


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_preprocessor_json_raises_only_named_errors(data, fuzz) -> None:
    text = data.draw(fuzz.json_text(json.loads(PREP.to_json())))
    # the valid input parses (a decoder refusing everything fails here)
    assert Preprocessor.from_json(PREP.to_json()) == PREP
    try:
        prep = Preprocessor.from_json(text)
    except FedCreditError:
        return
    assert Preprocessor.from_json(prep.to_json()) == prep
    assert len(prep.feature_names) == prep.n_features


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_vertical_run_config_raises_only_named_errors(data, fuzz) -> None:
    valid = VerticalConfig(short_exponent=True, binning="equal-width").to_user_config()
    values = data.draw(st.one_of(
        fuzz.record_like(valid),
        st.dictionaries(st.sampled_from(sorted(valid)), fuzz.json_values, max_size=4)))
    # the valid input parses (a decoder refusing everything fails here)
    assert VerticalConfig.from_user_config(valid).to_user_config() == valid
    try:
        cfg = VerticalConfig.from_user_config(values)
    except FedCreditError:
        return
    assert VerticalConfig.from_user_config(cfg.to_user_config()) == cfg
