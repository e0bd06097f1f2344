"""Vertical SecureBoost in one process equals the GBDT on the joined plaintext rows (same
bins): same trees node for node (the center's thresholds replaced by ids), same margins."""

from __future__ import annotations

import numpy as np
import pytest

from federation.ml.gbdt import BinEdges, GBDTConfig, HistGBDT, pooled_edges
from federation.steps.secureboost import SecureBoostTimings, train_secureboost_local
from protocols.paillier.keys import generate_paillier_keypair


def _data(rows: int, seed: int):
    rng = np.random.default_rng(seed)
    bank = rng.normal(size=(rows, 3))
    bank[rng.random(rows) < 0.1, 1] = np.nan
    center = np.column_stack([rng.normal(size=rows), rng.integers(0, 4, rows).astype(float)])
    center[rng.random(rows) < 0.1, 1] = np.nan
    logit = bank[:, 0] + 1.5 * center[:, 0] + (center[:, 1] == 2) - 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return bank, center, y


def test_secureboost_grows_the_joined_plaintext_trees() -> None:
    _, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    bank, center, y = _data(500, 0)
    config = GBDTConfig(trees=3, depth=3, bins=8, learning_rate=0.3, gradient_bits=20)
    timings = SecureBoostTimings()
    test_bank, test_center, test_y = _data(200, 1)
    local = train_secureboost_local(bank, y, center, config, private_key=private,
                                    bank_test=test_bank, center_test=test_center, y_test=test_y,
                                    center_categories=(0, 4), timings=timings)
    joined_edges = BinEdges(pooled_edges(bank, 8).cuts + pooled_edges(
        center, 8, n_categories=(0, 4)).cuts, (0, 0, 0, 0, 4), 8)
    joined = HistGBDT(config, edges=joined_edges, n_categories=(0, 0, 0, 0, 4)).fit(
        np.hstack([bank, center]), y).model_
    assert any(local.bank.center_nodes), "the center's features must win some splits"
    assert any(t.categorical.any() for t in local.bank.trees), "a categorical center split"
    for ours, theirs, nodes in zip(local.bank.trees, joined.trees, local.bank.center_nodes,
                                   strict=True):
        for name in ("feature", "split_bin", "categorical", "default_left", "left", "right",
                     "value"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
        bank_nodes = [n for n in np.flatnonzero(ours.left >= 0) if n not in nodes]
        assert np.array_equal(ours.threshold[bank_nodes], theirs.threshold[bank_nodes])
        for n in nodes:  # the bank's tree holds a placeholder, not the center's threshold
            assert ours.threshold[n] == float(ours.split_bin[n]) or ours.categorical[n]
    expected = joined.predict_margin(np.hstack([test_bank, test_center]))
    np.testing.assert_allclose(local.test_margins(), expected, atol=1e-12)
    assert timings.bank_encrypt > 0 and timings.center > 0 and len(timings.per_tree) == 3


def test_a_center_split_id_never_issued_is_refused() -> None:
    from protocols.secureboost.steps import CenterLookup, SplitLookupError

    with pytest.raises(SplitLookupError):
        CenterLookup().get(0)
