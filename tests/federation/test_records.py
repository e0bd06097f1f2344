"""Horizontal wire vocabulary: the message types Flower routes, and the step record round trip."""

from __future__ import annotations

import pytest
from flwr.app import ConfigRecord, RecordDict
from hypothesis import given
from hypothesis import strategies as st

from federation.ml.preprocess import FeatureLayout
from federation.run.config import RunConfig
from federation.wire.records import (
    FIELD_EVALUATE,
    FIELD_HIST_ROUND,
    FIELD_LAYOUT,
    FIELD_ROUND,
    FIELD_RUN_ID,
    HORIZONTAL_STEPS,
    KEY_STEP,
    StepInfo,
    layout_of,
    request_content,
    step_of,
    step_to_record,
)
from federation.wire.secagg import STEP_SECAGG
from federation.wire.trees import TREE_STEPS
from protocols.errors import MalformedMessageError

LAYOUT = FeatureLayout(("age", "income"), (("region", ("north", "south")),))


def test_message_types_are_the_ones_flower_routes() -> None:
    assert [s.message_type for s in HORIZONTAL_STEPS] == [
        "query.schema", "query.stats", "train", "evaluate", "query.finalize"]


def test_the_bank_app_handles_every_horizontal_step() -> None:
    from clients.app import app  # the one node app: FedAvg, tree and vertical handlers

    registered = set(app._registered_funcs)  # Flower's "<category>.<action|default>" keys
    horizontal = {f"{s.category}.{s.action or 'default'}"
                  for s in (*HORIZONTAL_STEPS, *TREE_STEPS, STEP_SECAGG)}
    assert horizontal <= registered
    # the vertical handlers (clients.vertical_app, registered on the same app) are all "v_" steps
    assert all(key.split(".", 1)[1].startswith("v_") for key in registered - horizontal)


@given(run_id=st.text(max_size=20), round_=st.integers(0, 2**40),
       layout=st.one_of(st.none(), st.text(max_size=40)), evaluate=st.booleans(),
       hist_round=st.one_of(st.none(), st.integers(0, 2**40)))
def test_step_record_round_trip(run_id: str, round_: int, layout: str | None, evaluate: bool,
                                hist_round: int | None) -> None:
    step = StepInfo(run_id, round_, layout, evaluate, hist_round)
    assert step_of(RecordDict({KEY_STEP: step_to_record(step)})) == step
    assert step.histograms_round == (round_ if hist_round is None else hist_round)


def test_a_request_carries_its_step_and_layout() -> None:
    content = request_content(RunConfig(), run_id="run-1", round_index=3, layout=LAYOUT)
    step = step_of(content)
    assert (step.run_id, step.round) == ("run-1", 3) and layout_of(step) == LAYOUT
    assert FIELD_LAYOUT not in request_content(RunConfig(), run_id="r")[KEY_STEP]


@pytest.mark.parametrize("values", [
    {FIELD_ROUND: 1}, {FIELD_RUN_ID: "r"}, {FIELD_RUN_ID: 7, FIELD_ROUND: 1},
    {FIELD_RUN_ID: "r", FIELD_ROUND: True}, {FIELD_RUN_ID: "r", FIELD_ROUND: -1},
    {FIELD_RUN_ID: "r", FIELD_ROUND: 1, FIELD_LAYOUT: 5},
    {FIELD_RUN_ID: "r", FIELD_ROUND: 1, FIELD_EVALUATE: 2},
    {FIELD_RUN_ID: "r", FIELD_ROUND: 1, FIELD_EVALUATE: "yes"},
    {FIELD_RUN_ID: "r", FIELD_ROUND: 1, FIELD_HIST_ROUND: -1},
    {FIELD_RUN_ID: "r", FIELD_ROUND: 1, FIELD_HIST_ROUND: True},
])
def test_a_malformed_step_record_is_refused(values: dict) -> None:
    with pytest.raises(MalformedMessageError, match="step record"):
        step_of(RecordDict({KEY_STEP: ConfigRecord(values)}))


def test_a_step_without_layout_has_none_to_open() -> None:
    with pytest.raises(MalformedMessageError, match="lacks the agreed feature layout"):
        layout_of(StepInfo("r", 0))
