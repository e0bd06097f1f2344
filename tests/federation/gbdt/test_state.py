"""The boosting-state codec: exact round trips, canonical bytes, strict reading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.ml.gbdt.binning import bin_matrix, pooled_edges
from federation.ml.gbdt.config import GBDTConfig
from federation.ml.gbdt.gradients import base_margin, label_sums, start_tree
from federation.ml.gbdt.model import Tree
from federation.ml.gbdt.state import (
    MAX_STATE_BYTES,
    BoostState,
    StateFormatError,
    state_from_bytes,
    state_to_bytes,
)
from federation.ml.gbdt.trainer import (
    TreeState,
    add_tree,
    apply_splits,
    choose_splits,
    finish_tree,
    leaf_values,
    level_request,
    local_histograms,
    new_tree,
)


def make_data(seed: int, rows: int = 300) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Two numeric columns (one with missing values) and one categorical column of 4 codes."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=rows), rng.exponential(size=rows),
                         rng.integers(0, 4, rows).astype(np.float64)])
    X[rng.random(rows) < 0.15, 1] = np.nan
    X[rng.random(rows) < 0.1, 2] = np.nan
    y = (rng.random(rows) < 1 / (1 + np.exp(-X[:, 0] - (X[:, 2] == 1)))).astype(np.float64)
    return X, y, (0, 0, 4)


def run_states(seed: int, config: GBDTConfig, rows: int = 300) -> list[BoostState]:
    """Every state of a one-party run: before each level and between trees."""
    X, y, cats = make_data(seed, rows)
    edges = pooled_edges(X, config.bins, n_categories=cats, cells=64)
    codes = bin_matrix(X, edges)
    start = base_margin(label_sums(y))
    margins, trees, states = np.full(y.size, start), [], []
    ids = np.arange(y.size)
    for t in range(config.trees):
        g, h = start_tree(y, margins, row_ids=ids, tree=t, config=config)
        assign = np.zeros(y.size, dtype=np.int64)
        state: TreeState = new_tree(t)
        seq = len(states)
        while not state.done:
            states.append(BoostState(len(states), start, edges, tuple(trees), state,
                                     1 if state.depth else 0))
            summed = local_histograms(codes, g, h, assign, level_request(state), edges)
            state, splits = choose_splits(state, summed, edges, config)
            assign = apply_splits(codes, assign, splits, edges)
        values = leaf_values(state, config)
        margins = add_tree(margins, assign, values)
        trees.append(finish_tree(state, values))
        states.append(BoostState(seq + 1, start, edges, tuple(trees), None))
    return states


CONFIG = GBDTConfig(trees=3, depth=3, bins=8, subsample=0.8, seed=3)


@pytest.fixture(scope="module")
def states() -> list[BoostState]:
    return run_states(0, CONFIG)


def assert_same_tree(a: Tree, b: Tree) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
        if x.dtype == np.float64:
            assert x.tobytes() == y.tobytes(), name


def assert_same_state(a: BoostState, b: BoostState) -> None:
    assert (a.seq, a.parties, a.schema_version) == (b.seq, b.parties, b.schema_version)
    assert float(a.base_margin).hex() == float(b.base_margin).hex()
    assert a.edges == b.edges
    assert len(a.trees) == len(b.trees)
    for ta, tb in zip(a.trees, b.trees, strict=True):
        assert_same_tree(ta, tb)
    assert (a.growing is None) == (b.growing is None)
    if a.growing is None or b.growing is None:
        return
    ga, gb = a.growing, b.growing
    for name in ("tree", "depth", "open", "build", "derive", "splits", "done"):
        assert getattr(ga, name) == getattr(gb, name), name
    assert [v.hex() for v in ga.grad] == [v.hex() for v in gb.grad]
    assert [v.hex() for v in ga.hess] == [v.hex() for v in gb.hess]
    assert sorted(ga.parent_hists) == sorted(gb.parent_hists)
    for node, hist in ga.parent_hists.items():
        assert np.asarray(hist).tobytes() == gb.parent_hists[node].tobytes()
        assert gb.parent_hists[node].shape == np.asarray(hist).shape


def test_states_cover_mid_tree_and_between_trees(states) -> None:
    assert any(s.growing is not None and s.growing.parent_hists for s in states)
    assert any(s.growing is None and s.trees for s in states)
    assert any(s.growing is not None and s.growing.splits and any(
        sp.categorical for sp in s.growing.splits) for s in states) or any(
        t.categorical.any() for s in states for t in s.trees)


def test_round_trip_is_exact_and_bytes_are_canonical(states) -> None:
    for state in states:
        data = state_to_bytes(state)
        back = state_from_bytes(data)
        assert_same_state(state, back)
        assert state_to_bytes(state) == data
        assert state_to_bytes(back) == data


def test_same_run_twice_gives_the_same_bytes(states) -> None:
    again = run_states(0, CONFIG)
    assert [state_to_bytes(s) for s in states] == [state_to_bytes(s) for s in again]


def test_model_of_a_state_scores_like_its_trees(states) -> None:
    last = states[-1]
    X, _, _ = make_data(0)
    model = state_from_bytes(state_to_bytes(last)).model()
    assert model.to_json() == last.model().to_json()
    assert len(model.trees) == CONFIG.trees and model.n_categories == (0, 0, 4)
    assert np.all(np.isfinite(model.predict_margin(X)))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), depth=st.integers(1, 4), bins=st.integers(4, 16),
       rows=st.integers(20, 200))
def test_round_trip_of_random_runs(seed: int, depth: int, bins: int, rows: int) -> None:
    config = GBDTConfig(trees=2, depth=depth, bins=bins, subsample=0.9, seed=seed)
    for state in run_states(seed, config, rows):
        data = state_to_bytes(state)
        assert_same_state(state, state_from_bytes(data))
        assert state_to_bytes(state_from_bytes(data)) == data


def mid_tree(states: list[BoostState]) -> BoostState:
    return next(s for s in states if s.growing is not None and s.growing.parent_hists)


def edit(data: bytes, change) -> bytes:
    doc = json.loads(data)
    change(doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _set(path: tuple, value):
    def change(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return change


@pytest.mark.parametrize(("path", "value", "field"), [
    (("v",), 1, "v"),
    (("format",), "other", "format"),
    (("seq",), -1, "seq"),
    (("seq",), "1", "seq"),
    (("parties",), 1.5, "parties"),
    (("base_margin",), "nan", "base_margin"),
    (("base_margin",), 0.5, "base_margin"),
    (("edges", "n_bins"), 1, "edges.n_bins"),
    (("edges", "cuts"), [], "edges"),
    (("growing", "tree"), 7, "growing.tree"),
    (("growing", "depth"), 99, "growing.depth"),
    (("growing", "grad"), "AAAA", "growing.grad"),
    (("growing", "hess"), "not base64!", "growing.hess"),
    (("growing", "done"), 1, "growing.done"),
    (("growing", "open"), [0, 0], "growing.open"),
    (("growing", "parent_hists"), [[0, "AAAAAAAAAAA="]], "growing.parent_hists[0]"),
    (("growing", "splits", 0, "threshold"), (1.5).hex(), "growing.splits[0].threshold"),
    (("growing", "splits", 0, "left"), 5, "growing.splits"),
    (("trees", 0, "feature"), [0], "trees[0].split_bin"),
    (("trees", 0, "left"), "x", "trees[0].left"),
    (("trees", 0, "value"), None, "trees[0].value"),
    (("validation",), [(-0.5).hex()], "validation"),
    (("validation",), ["nan"], "validation[0]"),
    (("stopped",), 1, "stopped"),
])
def test_corrupt_fields_are_refused_by_name(states, path, value, field) -> None:
    data = state_to_bytes(mid_tree(states) if path[0] == "growing" else states[-1])
    with pytest.raises(StateFormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        state_from_bytes(edit(data, _set(path, value)))


def test_early_stopping_fields_round_trip_and_a_stopped_state_grows_nothing(states) -> None:
    import dataclasses

    done = dataclasses.replace(states[-1], growing=None, parties=0, validation=(0.52, 0.5),
                               stopped=True)
    back = state_from_bytes(state_to_bytes(done))
    assert back.validation == (0.52, 0.5) and back.stopped is True
    assert state_to_bytes(back) == state_to_bytes(done)
    with pytest.raises(StateFormatError, match="stopped"):
        dataclasses.replace(mid_tree(states), stopped=True)


def test_nan_in_an_array_is_refused(states) -> None:
    state = mid_tree(states)
    nan = np.array([np.nan] * len(state.growing.grad))
    import base64
    data = edit(state_to_bytes(state),
                _set(("growing", "grad"), base64.b64encode(nan.tobytes()).decode()))
    with pytest.raises(StateFormatError, match="growing.grad"):
        state_from_bytes(data)


@pytest.mark.parametrize("bad", [b"", b"not json", b"[]", b"{}", b"\xff\xfe", b"[" * 100000,
                                 b"null", b'{"format":1}'])
def test_garbage_is_refused(bad: bytes) -> None:
    with pytest.raises(StateFormatError):
        state_from_bytes(bad)


def test_every_truncation_is_refused(states) -> None:
    data = state_to_bytes(mid_tree(states))
    for cut in range(0, len(data), max(1, len(data) // 300)):
        with pytest.raises(StateFormatError):
            state_from_bytes(data[:cut])


def test_extra_whitespace_or_keys_are_refused(states) -> None:
    data = state_to_bytes(states[-1])
    with pytest.raises(StateFormatError, match="canonical"):
        state_from_bytes(json.dumps(json.loads(data), sort_keys=True).encode())
    with pytest.raises(StateFormatError, match="document"):
        state_from_bytes(edit(data, _set(("extra",), 1)))


def test_oversized_input_is_refused() -> None:
    with pytest.raises(StateFormatError, match="cap"):
        state_from_bytes(b" " * (MAX_STATE_BYTES + 1))


def test_constructor_refuses_bad_values(states) -> None:
    s = states[-1]
    with pytest.raises(StateFormatError, match="seq"):
        BoostState(-1, s.base_margin, s.edges, s.trees, None)
    with pytest.raises(StateFormatError, match="parties"):
        BoostState(0, s.base_margin, s.edges, s.trees, None, 2)
