"""Fuzz what a bank reads from the coordinator in a tree run: the shared state blob and the
tree records. Malformed input ends in a named error; the valid input still decodes (a decoder
that refused everything would fail here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, RecordDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.ml.gbdt import GBDTConfig, HistGBDT, new_tree, pooled_edges
from federation.ml.gbdt.state import BoostState, state_from_bytes, state_to_bytes
from federation.wire.trees import (
    FIELD_STATE,
    FIELD_STATE_SEQ,
    KEY_TREE_MODEL,
    KEY_TREE_STATE,
    TreeRelease,
    add_release,
    release_of,
    state_of,
)
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def state_bytes() -> bytes:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    X[rng.random(200) < 0.1, 2] = np.nan
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    edges = pooled_edges(X, 8)
    model = HistGBDT(GBDTConfig(trees=2, depth=2, bins=8), edges=edges).fit(X, y).model_
    return state_to_bytes(BoostState(4, model.base_margin, edges, model.trees, new_tree(2), 0))


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_state_decoder_raises_only_named_errors(data, fuzz, state_bytes) -> None:
    assert state_to_bytes(state_from_bytes(state_bytes)) == state_bytes
    blob = data.draw(st.one_of(
        fuzz.json_like(json.loads(state_bytes),
                       dumps=lambda d: json.dumps(d, sort_keys=True, separators=(",", ":"))),
        fuzz.bytes_like(state_bytes, max_size=512)))
    try:
        state = state_from_bytes(blob)
    except FedCreditError:
        return
    assert state_to_bytes(state) == blob  # only the canonical encoding of a state is accepted


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_tree_records_raise_only_named_errors(data, fuzz) -> None:
    valid_state = {FIELD_STATE: b"blob", FIELD_STATE_SEQ: 3}
    content = RecordDict({KEY_TREE_STATE: ConfigRecord(valid_state)})
    assert state_of(content) == (b"blob", 3)
    release = add_release(RecordDict(), TreeRelease("{}", "{}", ("a",), "{}"))
    assert release_of(release) == TreeRelease("{}", "{}", ("a",), "{}")
    try:
        state_of(RecordDict({KEY_TREE_STATE: ConfigRecord(data.draw(fuzz.record_like(
            valid_state)))}))
    except FedCreditError:
        pass
    fields = dict(release[KEY_TREE_MODEL])
    try:
        release_of(RecordDict({KEY_TREE_MODEL: ConfigRecord(data.draw(fuzz.record_like(
            fields)))}))
    except FedCreditError:
        pass
