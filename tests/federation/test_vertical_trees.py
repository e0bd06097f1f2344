"""The parties' SecureBoost steps cut at the message boundaries, driven like the coordinator
drives them: the bank's trees equal the joined-plaintext trees, and scoring through the
center's answers gives the joined model's AUC."""

from __future__ import annotations

import numpy as np

from federation.ml.gbdt import BinEdges, GBDTConfig, HistGBDT, pooled_edges
from federation.ml.metrics import auc_ks_from_histograms, score_histograms
from federation.steps import vertical_trees as vt
from protocols.paillier.keys import generate_paillier_keypair


def _rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    bank, center = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    logit = bank[:, 0] + 1.5 * center[:, 0] - 0.5
    return bank, center, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def drive(bank: vt.BankTrees, center: vt.CenterTrees, trees: int) -> int:
    """The coordinator's relay loop; returns the number of messages sent."""
    messages = 0
    for _ in range(trees):
        cts = vt.bank_gradients(bank)
        messages += 1
        done = False
        while not done:
            assignment, build = vt.level_fields(bank)
            packed, count = vt.center_level(center, ciphertexts=cts, assignment=assignment,
                                            build=build)
            cts = None
            splits = vt.bank_decide(bank, packed, count)
            ids, bits = vt.center_apply(center, splits)
            done = vt.bank_apply(bank, ids, bits)
            messages += 4
    return messages


def test_message_steps_grow_the_joined_trees_and_score_like_them() -> None:
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    config = GBDTConfig(trees=3, depth=3, bins=8, learning_rate=0.3, gradient_bits=20)
    bank_x, center_x, y = _rows(400, 0)
    bank_t, center_t, y_t = _rows(300, 1)
    center, positions = vt.center_start(center_x, center_t, 8, public,
                                        gradient_bits=config.gradient_bits)
    bank = vt.bank_start(bank_x, bank_t, y, y_t, config, private, positions)
    assert drive(bank, center, config.trees) > config.trees
    edges = BinEdges(pooled_edges(bank_x, 8).cuts + pooled_edges(center_x, 8).cuts, (0,) * 5, 8)
    joined = HistGBDT(config, edges=edges).fit(np.hstack([bank_x, center_x]), y).model_
    assert any(bank.center_nodes)
    for ours, theirs in zip(bank.trees, joined.trees, strict=True):
        assert np.array_equal(ours.feature, theirs.feature)
        assert np.array_equal(ours.value, theirs.value)
    report = vt.bank_score(bank, vt.center_branches(center))
    auc, ks, bad, good = report.auc, report.ks, report.hist_bad, report.hist_good
    expected = score_histograms(y_t, 1 / (1 + np.exp(-joined.predict_margin(
        np.hstack([bank_t, center_t])))))
    assert (bad, good) == (expected[0].tolist(), expected[1].tolist())
    assert (auc, ks) == auc_ks_from_histograms(*expected)


def test_prepared_parties_keep_gaps_and_categories_for_the_trees(tmp_path) -> None:
    from federation.data.synthetic import write_enterprise_pair
    from federation.data.vertical_data import align, load_party, prepare

    _, center_file = write_enterprise_pair(tmp_path, n_enterprises=400, seed=3)
    table = load_party(center_file, id_col="uscc", target=None)
    aligned = prepare(align(table, np.arange(table.n_rows)), "center", run_salt="s",
                      test_fraction=0.3)
    assert not np.isnan(aligned.x_train).any()  # LR gets imputed, standardised columns
    assert np.isnan(aligned.tree_train).any()  # the trees learn where the gaps go
    assert aligned.tree_train.shape[1] == len(aligned.tree_categories)
    assert any(aligned.tree_categories), "the center's text columns stay categorical"
    assert aligned.tree_test.shape[0] == aligned.x_test.shape[0]
