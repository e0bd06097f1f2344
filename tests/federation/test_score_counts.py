"""Score-histogram counts under Paillier, grouped under a public bound on their sum: the same
exact sums as one slot per count, in fewer ciphertexts; the bound holds for every split the
run's test fraction makes, and a mismatched bound is refused, never decoded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.partition import train_test_split_rows
from federation.run.config import RunConfig
from federation.steps.horizontal_bank import (
    ScoreRowsError,
    check_score_rows,
    masked_count_bound,
    score_count_bound,
)
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_WEIGHTS,
    PaillierBankSum,
    PaillierCoordinatorSum,
    count_groups_for,
)
from protocols.errors import ProtocolError
from protocols.paillier.keys import generate_paillier_keypair

BANKS = 5
RUN = "run-score-counts"


@pytest.fixture(scope="module")
def keys():
    return generate_paillier_keypair(1024, allow_insecure_test_key=True)


def histograms(rows: int, seed: int) -> np.ndarray:
    counts = np.zeros(2048)
    np.add.at(counts, np.random.default_rng(seed).integers(0, 2048, rows), 1)
    return counts


def summed(keys, vectors, most):
    public, private = keys
    sealed = [PaillierBankSum(private, BANKS, bank=k).seal(v, kind=KIND_COUNTS, run_id=RUN,
                                                           round=3, most=most)
              for k, v in enumerate(vectors)]
    total = PaillierCoordinatorSum(public, BANKS).combine(sealed, kind=KIND_COUNTS, length=None,
                                                          run_id=RUN, round=3, most=most)
    return sealed, total


def test_grouped_counts_open_to_the_same_exact_sums_in_fewer_ciphertexts(keys) -> None:
    vectors = [histograms(rows, seed) for seed, rows in enumerate((90, 300, 7, 1500))]
    most = 2000  # >= every count's sum (1,897 rows in all)
    bank = PaillierBankSum(keys[1], BANKS, bank=0)
    opened = {}
    sizes = {}
    for bound in (None, most):
        sealed, total = summed(keys, vectors, bound)
        opened[bound] = bank.open(total, kind=KIND_COUNTS, run_id=RUN, round=3, most=bound)
        sizes[bound] = len(sealed[0].payload)
        assert sealed[0].length == total.length == 2048 and total.parties == 4
    assert np.array_equal(opened[None], np.sum(vectors, axis=0))
    assert np.array_equal(opened[most], opened[None])  # bit for bit
    assert sizes[most] < 0.75 * sizes[None]


def test_a_sum_opened_under_another_bound_is_refused(keys) -> None:
    _, total = summed(keys, [histograms(50, 1), histograms(60, 2)], 2000)
    bank = PaillierBankSum(keys[1], BANKS, bank=0)
    with pytest.raises(ProtocolError):
        bank.open(total, kind=KIND_COUNTS, run_id=RUN, round=3, most=None)
    with pytest.raises(ProtocolError):
        bank.open(total, kind=KIND_COUNTS, run_id=RUN, round=3, most=2**14)


def test_the_coordinator_refuses_vectors_grouped_under_another_bound(keys) -> None:
    public, private = keys
    sealed = [PaillierBankSum(private, BANKS, bank=0).seal(
        histograms(50, 1), kind=KIND_COUNTS, run_id=RUN, round=3, most=2000)]
    with pytest.raises(ProtocolError):
        PaillierCoordinatorSum(public, BANKS).combine(sealed, kind=KIND_COUNTS, length=None,
                                                      run_id=RUN, round=3, most=None)


def test_a_count_above_the_bound_is_refused_when_sealing(keys) -> None:
    counts = histograms(50, 1)
    counts[7] = 2001
    with pytest.raises(ProtocolError, match="index 7"):
        PaillierBankSum(keys[1], BANKS, bank=0).seal(counts, kind=KIND_COUNTS, run_id=RUN,
                                                     round=3, most=2000)


def test_grouping_only_where_it_saves_ciphertexts_and_never_for_other_kinds(keys) -> None:
    groups = count_groups_for(21_143, 100, 2048)  # UCI, 100 banks
    assert groups is not None and groups.value_bits >= 20  # the contributors' tag still fits
    assert count_groups_for(2**30, 100, 2048) is None  # no narrower than one slot a count
    coordinator = PaillierCoordinatorSum(keys[0], BANKS)
    assert coordinator.count_groups(KIND_WEIGHTS, 2000) is None
    assert coordinator.count_groups(KIND_COUNTS, None) is None


def test_the_bound_is_public_and_absent_under_dp_secagg_or_without_a_total() -> None:
    cfg = RunConfig(banks=100, test_fraction=0.3, aggregation="paillier")
    assert score_count_bound(cfg, 21_000) == 21_000  # N > 9,343 = r N + K (r + 3), r = 3/7
    assert score_count_bound(replace(cfg, test_fraction=0.75), 100) == 300 + 600
    assert score_count_bound(replace(cfg, dp_epsilon=1.0, dp_delta=1e-5), 21_000) is None
    masked = replace(cfg, aggregation="paillier-secagg")
    assert score_count_bound(masked, 21_000) == 21_000  # packed alike under the masks
    assert score_count_bound(replace(cfg, aggregation="secagg"), 21_000) is None  # ring sums
    # a masking session's bound: the score counts' of a linear model only
    assert masked_count_bound(masked, KIND_COUNTS, 21_000) == 21_000
    assert masked_count_bound(masked, KIND_WEIGHTS, 21_000) is None
    assert masked_count_bound(replace(masked, model="gbdt"), KIND_COUNTS, 21_000) is None
    assert score_count_bound(cfg, 0.0) is None
    assert score_count_bound(cfg, 10.5) is None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400)), min_size=1, max_size=6),
       st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]), st.integers(0, 2**16))
def test_every_split_of_the_run_keeps_its_banks_test_rows_under_the_bound(
        classes: list[tuple[int, int]], fraction: float, seed: int) -> None:
    cfg = RunConfig(banks=len(classes), test_fraction=fraction, aggregation="paillier")
    train_total, test_total = 0, 0
    for bank, (bad, good) in enumerate(classes):
        y = np.array([1] * bad + [0] * good)
        train, test = train_test_split_rows(np.arange(y.size), y, test_fraction=fraction,
                                            seed=seed + bank)
        # an honest split never trips its own bank's rule
        check_score_rows(cfg, train_rows=train.size, test_rows=test.size)
        train_total += train.size
        test_total += test.size
    if train_total:
        bound = score_count_bound(cfg, train_total)
        assert bound is not None and bound >= max(test_total, train_total)


def test_a_bank_whose_test_rows_break_the_split_rule_refuses() -> None:
    cfg = RunConfig(banks=3, test_fraction=0.3, aggregation="paillier")
    check_score_rows(cfg, train_rows=100, test_rows=46)  # 100 * 3/7 + 3/7 + 3 = 46.3
    with pytest.raises(ScoreRowsError, match="test-fraction"):
        check_score_rows(cfg, train_rows=100, test_rows=47)


@pytest.fixture(scope="module")
def key_folder(tmp_path_factory: pytest.TempPathFactory):
    from federation.run.key_store import provision_simulation_keys

    folder = tmp_path_factory.mktemp("keys")
    provision_simulation_keys(folder, 3, bits=2048)
    return folder


def test_a_banks_metrics_and_release_from_grouped_counts_equal_the_plain_runs(key_folder) -> None:
    """What a bank reports from the last round's sum (AUC, KS, calibration map, released
    histograms) is bit for bit what the same counts give through plain aggregation."""
    from federation.ml.metrics import HIST_BINS, score_histograms
    from federation.steps.horizontal_bank import histogram_metrics, open_released_histograms
    from federation.steps.secure_sum import bank_summation, coordinator_summation

    rng = np.random.default_rng(5)
    vectors, train_rows = [], 0
    for rows in (700, 300, 1000):
        parts: list[np.ndarray] = []
        for n in (rows * 3 // 7, rows):  # test rows, then training rows
            z = rng.normal(-1.2, 1.3, n)
            parts += score_histograms(rng.random(n) < 1 / (1 + np.exp(-z)),
                                      1 / (1 + np.exp(-0.4 * z)))
        vectors.append(np.concatenate(parts).astype(np.float64))
        train_rows += rows
    assert vectors[0].size == 4 * HIST_BINS
    reported = {}
    for aggregation in ("plain", "paillier"):
        cfg = RunConfig(banks=3, rounds=2, aggregation=aggregation, keys_dir=str(key_folder))
        most = score_count_bound(cfg, train_rows)
        sealed = [bank_summation(cfg, k).seal(v, kind=KIND_COUNTS, run_id=RUN, round=2,
                                              most=most) for k, v in enumerate(vectors)]
        total = coordinator_summation(cfg).combine(sealed, kind=KIND_COUNTS, length=None,
                                                   run_id=RUN, round=2, most=most)
        reported[aggregation] = (
            histogram_metrics(cfg, 1, total, run_id=RUN, round_index=2, total_rows=train_rows),
            open_released_histograms(cfg, 2, total, run_id=RUN, round_index=2,
                                     total_rows=train_rows))
    assert count_groups_for(score_count_bound(cfg, train_rows), 3, 2048) is not None
    plain, encrypted = reported["plain"], reported["paillier"]
    assert plain[0] == encrypted[0] and "cal-slope" in plain[0]
    assert all(np.array_equal(a, b) for a, b in zip(plain[1], encrypted[1], strict=True))
