"""A bank's side of the horizontal protocol, as plain functions over its own data.

Each function receives the combined sealed vectors the coordinator forwarded, opens what the
bank needs with the run's summation scheme (plain or Paillier, ``federation.steps.secure_sum``), does
its local work, and returns a sealed vector (and public metrics). The ClientApp only moves
records; no function here returns a row or a label. The per-round steps take the bank's
``summation`` side when the caller built it once for a request (opening the bank's key files
once, not at every step); without it they build their own. torch is imported only by the steps that
need a model, so a node answers the preprocessing steps without loading it.

Weighted FedAvg: bank k seals ``[(n_k/N) * w_k, n_k/N]``; the opened sum divided by its last
element is the weighted mean of the banks that took part, even when some dropped out.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.data.bank_data import BankData
from federation.errors import ConfigError
from federation.ml.aggregation import flatten, unflatten
from federation.ml.calibration import CalibrationError, fit_platt
from federation.ml.dp.releases import consistent_stats, denoise_sum, noisy_histograms
from federation.ml.metrics import HIST_BINS, auc_ks_from_histograms
from federation.ml.preprocess import FeatureLayout, Preprocessor, combine_stats, local_stats_vector
from federation.run.audit_heads import witness
from federation.run.config import RunConfig
from federation.run.key_store import bank_keys, load_signing_key
from federation.steps.secure_sum import (
    COUNT_BITS,
    KIND_COUNTS,
    KIND_STATS,
    KIND_WEIGHTS,
    WEIGHT_BITS,
    WEIGHT_CLIP,
    BankSummation,
    Sealed,
    bank_summation,
    summation_scheme,
)
from federation.steps.weight_share import check_reported_rows, check_weight_mass
from federation.wire.records import (
    METRIC_AUC,
    METRIC_CAL_INTERCEPT,
    METRIC_CAL_ROWS,
    METRIC_CAL_SLOPE,
    METRIC_EVAL_ROUND,
    METRIC_KS,
    SignatureClaim,
)
from protocols.aggregation.secure_aggregation import PlaintextMask
from protocols.errors import FedCreditError, ProtocolError
from protocols.identity.head_signing import AuditHead
from protocols.identity.signing import sign_update, statement_for

_PREP_CACHE: dict[tuple[str, str], tuple[Preprocessor, float]] = {}
MIN_RELEASE_PARTIES = 2
"""Fewest banks in a sum before its training-score counts are released (a sum of one bank's
rows would be that bank's own distribution)."""


@lru_cache(maxsize=64)
def _initial_weights(cfg: RunConfig, n_features: int) -> tuple[np.ndarray, ...]:
    from federation.ml.training import make_model  # torch only where a model is needed

    weights = tuple(np.asarray(w) for w in make_model(cfg, n_features).get_weights())
    for w in weights:
        w.setflags(write=False)
    return weights


def initial_weights(cfg: RunConfig, n_features: int) -> list[np.ndarray]:
    """The run's initial model weights (seeded by ``cfg``; fresh copies). Built once per process
    for each run config and feature count: every request a bank answers needs their shapes."""
    return [w.copy() for w in _initial_weights(cfg, n_features)]


class ScoreRowsError(ProtocolError):
    """This bank's test rows exceed what the run's split rule allows for its training rows,
    so the public bound on the summed score counts (:func:`score_count_bound`) may not hold."""


def _test_ratio(cfg: RunConfig) -> Fraction:
    """``r = f / (1 - f)`` for the run's public ``test_fraction`` ``f`` (exact)."""
    f = Fraction(cfg.test_fraction)
    return f / (1 - f)


def score_count_bound(cfg: RunConfig, total_rows: float) -> int | None:
    """The public bound on the sum over every bank of any one score-histogram count (what
    :func:`sealed_histograms` seals with, :mod:`federation.steps.secure_sum`), or None.

    The stratified split (:func:`federation.data.partition.train_test_split_rows`) puts
    ``k_c <= max(1, r t_c + (r + 1)/2)`` test rows of class ``c`` beside ``t_c`` training
    rows, ``r = f/(1 - f)`` (``k_c = round(m f)``, at least 1 of ``m >= 2``); so a bank holds
    at most ``r * train + r + 3`` test rows of its two classes (each bank checks its own,
    :func:`check_score_rows`) and the banks together at most ``r * N + K * (r + 3)``: ``N``
    the training rows of all banks (the opened statistics' total, which every bank checks
    against the reported rows; the coordinator sums the same reported rows), ``K`` the run's
    banks. Training-row counts (last round) add up to at most ``N``. The bound is the larger.
    Every bank in a sum took part in the statistics (the weight-mass check of
    :mod:`federation.steps.weight_share` refuses others).

    None (one ``COUNT_BITS`` slot per count, as before) under DP (noisy counts and total),
    under ``secagg`` (its ring sums are exact whatever the bound; nothing is packed) and before
    a total is known. Under ``paillier-secagg`` the counts session's length follows the
    grouped codec (:func:`masked_count_bound`).
    """
    scheme = summation_scheme(cfg.aggregation)
    if cfg.dp_epsilon > 0 or (scheme.masked and not scheme.needs_paillier_key) or \
            not total_rows > 0 or float(total_rows) != int(total_rows):
        return None
    r = _test_ratio(cfg)
    return max(int(total_rows), math.ceil(r * int(total_rows) + cfg.banks * (r + 3)))


def masked_count_bound(cfg: RunConfig, kind: str, total_rows: float) -> int | None:
    """The bound a masking session of ``kind`` packs its values under: the score counts'
    (:func:`score_count_bound`) for a linear model's ``counts`` session, None otherwise
    (boosted trees seal their bin counts one slot each). A bank's advert length and the
    coordinator's residual follow it, so both use the same codec."""
    if kind != KIND_COUNTS or cfg.model == "gbdt":
        return None
    return score_count_bound(cfg, total_rows)


def check_score_rows(cfg: RunConfig, *, train_rows: int, test_rows: int) -> None:
    """Refuse (ScoreRowsError) to seal grouped score counts when this bank's test rows exceed
    ``r * train + r + 3`` (:func:`score_count_bound`); it depends on the row counts only,
    which the coordinator learns from the replies anyway."""
    r = _test_ratio(cfg)
    if test_rows > r * train_rows + r + 3:
        raise ScoreRowsError("this bank's test rows exceed what the run's test-fraction split "
                             "gives for its training rows, so the summed score counts could "
                             "overflow their packed fields; split the bank's rows with the "
                             "run's test-fraction.")


class SimulatedDropout(FedCreditError):
    """Fault injection: this bank vanishes in this round (simulations and tests only)."""


def check_not_dropped(cfg: RunConfig, bank: int, round_number: int) -> None:
    """Raise :class:`SimulatedDropout` when the drop schedule removes ``bank`` this round."""
    if bank in cfg.dropped_banks(round_number):
        raise SimulatedDropout(f"bank {bank} dropped out in round {round_number} "
                               "(drop-schedule fault injection).")


def _signing_key(cfg: RunConfig, bank: int) -> Ed25519PrivateKey:
    key = load_signing_key(cfg.keys_dir, bank)
    if key is None:  # fail closed: the coordinator refuses unsigned updates anyway
        raise ConfigError("this bank has no signing key in the run's key folder; every run "
                          "signs its updates (`fedcredit keys init-signing`).")
    return key


def sign_sealed(cfg: RunConfig, bank: int, sealed: Sealed, *, run_id: str, step: str,
                round_index: int, node_id: int,
                summation: BankSummation | None = None) -> SignatureClaim:
    """Sign a sealed vector for (run, step, round, this Flower node).

    Raises
    ------
    ConfigError
        The bank has no signing key (no update ever leaves unsigned).
    """
    statement = statement_for(run_id=run_id, step=step, round=round_index, bank=bank,
                              node_id=node_id,
                              key_fingerprint=(summation or
                                               bank_summation(cfg, bank)).key_fingerprint,
                              payload=sealed.payload)
    return SignatureClaim(run_id, step, round_index,
                          sign_update(_signing_key(cfg, bank), statement))


def witness_audit_head(cfg: RunConfig, bank: int, head: AuditHead | None, *,
                       node_id: int) -> None:
    """Sign the coordinator's announced audit head and keep it in this bank's own key folder
    (``bank-<k>/audit-heads.jsonl``, :mod:`federation.run.audit_heads`); nothing to do when
    the request announces none. Raises HeadEquivocationError when the coordinator shows a
    different hash for a record this bank already signed."""
    if head is None:
        return
    witness(bank_keys(cfg.keys_dir, bank).audit_heads, _signing_key(cfg, bank), head,
            bank=bank, node_id=node_id)


def seal_stats(cfg: RunConfig, data: BankData, layout: FeatureLayout, *, run_id: str,
               mask: PlaintextMask | None = None) -> Sealed:
    """Preprocessing step 2: the bank's stats vector, sealed (``mask``: its SecAgg+ session's
    plaintext mask under a masked scheme). Under DP it is noised first, over values clipped
    to bounds the bank picks privately (:mod:`federation.ml.dp.releases`)."""
    if cfg.dp_epsilon > 0:
        from federation.ml.dp.releases import noisy_stats_vector
        from federation.ml.training import release_noise_of

        vector = noisy_stats_vector(data.train, layout,
                                    noise_multiplier=release_noise_of(cfg, data.train.n_rows))
    else:
        vector = local_stats_vector(data.train, layout)
    return bank_summation(cfg, data.bank).seal(vector, kind=KIND_STATS, run_id=run_id, round=0,
                                               mask=mask)


def open_preprocessing(
    cfg: RunConfig, bank: int, layout: FeatureLayout, stats_sum: Sealed, *, run_id: str
) -> tuple[Preprocessor, float]:
    """Shared preprocessing and total training rows from the combined stats (cached)."""
    key = (run_id, hashlib.sha256(stats_sum.payload).hexdigest())
    if key not in _PREP_CACHE:
        total = bank_summation(cfg, bank).open(stats_sum, kind=KIND_STATS, run_id=run_id, round=0)
        if cfg.dp_epsilon > 0:
            total = consistent_stats(layout, total)
        _PREP_CACHE[key] = (combine_stats(layout, total), float(total[0]))
    return _PREP_CACHE[key]


def open_weights(
    cfg: RunConfig, bank: int, prep: Preprocessor, weights_sum: Sealed | None, *, run_id: str,
    round_index: int, rows: tuple[int, int] | None = None, total_rows: float = 0.0,
    summation: BankSummation | None = None,
) -> list[np.ndarray]:
    """Global weights: the initial model (seeded) or the opened weighted mean of last round.

    With ``rows`` (the coordinator's reported-row sums: all banks, banks in this sum) and
    ``total_rows`` (``N`` from the opened statistics), the weight mass must match the row
    counts (:mod:`federation.steps.weight_share`), else WeightShareError."""
    like = initial_weights(cfg, prep.n_features)
    if weights_sum is None:
        return like
    opened = (summation or bank_summation(cfg, bank)).open(weights_sum, kind=KIND_WEIGHTS,
                                                           run_id=run_id, round=round_index)
    mass = opened[-1]
    if not mass > 0:
        raise ProtocolError("the combined update carries no weight mass; no bank contributed.")
    if rows is not None and total_rows > 0:
        if cfg.dp_epsilon <= 0:  # noisy statistics under DP: their total is not exact
            check_reported_rows(rows[0], total_rows)
        check_weight_mass(float(mass), total_rows=total_rows, rows_in_sum=rows[1],
                          parties=weights_sum.parties, step=2 * WEIGHT_CLIP / 2**WEIGHT_BITS)
    return unflatten(opened[:-1] / mass, like)


def histogram_metrics(
    cfg: RunConfig, bank: int, hist_sum: Sealed | None, *, run_id: str, round_index: int,
    total_rows: float = 0.0, summation: BankSummation | None = None,
) -> dict[str, Any]:
    """Global AUC/KS from the combined score histograms (empty when there are none yet) and,
    after the last round, the calibration map fitted on the combined training-row histograms
    (every bank opens the same sums, so every bank reports the same map). ``total_rows``: the
    opened statistics' total, for :func:`score_count_bound`."""
    if hist_sum is None:
        return {}
    opened = (summation or bank_summation(cfg, bank)).open(
        hist_sum, kind=KIND_COUNTS, run_id=run_id, round=round_index,
        most=score_count_bound(cfg, total_rows))
    if cfg.dp_epsilon > 0:  # noisy sums under DP: the same estimates at every bank
        opened = denoise_sum(opened, parties=hist_sum.parties)
    auc, ks = auc_ks_from_histograms(*_split_counts(opened, 0))
    metrics: dict[str, Any] = {METRIC_AUC: auc, METRIC_KS: ks, METRIC_EVAL_ROUND: round_index}
    if opened.size == 4 * HIST_BINS:
        metrics |= calibration_metrics(opened[2 * HIST_BINS:])
    return metrics


def calibration_metrics(counts: np.ndarray) -> dict[str, Any]:
    """The calibration map fitted on opened (bad, good) counts of the fit rows, as the metrics
    a bank reports (empty when a class has too few rows: the run reports no calibration)."""
    bad, good = (np.maximum(c, 0) for c in _split_counts(counts, 0))  # DP noise can go below 0
    try:
        pd_map = fit_platt(bad, good)
    except CalibrationError:
        return {}
    return {METRIC_CAL_SLOPE: pd_map.slope, METRIC_CAL_INTERCEPT: pd_map.intercept,
            METRIC_CAL_ROWS: int(bad.sum() + good.sum())}


def _split_counts(opened: np.ndarray, part: int) -> tuple[np.ndarray, np.ndarray]:
    """(bad, good) counts of part 0 (test rows) or 1 (training rows, last round only)."""
    at = 2 * HIST_BINS * part
    return (np.rint(opened[at:at + HIST_BINS]).astype(np.int64),
            np.rint(opened[at + HIST_BINS:at + 2 * HIST_BINS]).astype(np.int64))


def open_released_histograms(
    cfg: RunConfig, bank: int, hist_sum: Sealed, *, run_id: str, round_index: int,
    total_rows: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """What a bank releases at the end: the summed (bad, good) test-score histograms and,
    when the last round's sum also holds the training rows' histograms of at least
    :data:`MIN_RELEASE_PARTIES` banks, their summed training-score counts (both classes
    together: what the report's train-vs-test stability (PSI) needs, and no more).

    Security: like the test histograms, the training counts are a sum over banks (under DP
    noised by each bank before sealing); one bank's own distribution is never released.
    """
    opened = bank_summation(cfg, bank).open(hist_sum, kind=KIND_COUNTS, run_id=run_id,
                                            round=round_index,
                                            most=score_count_bound(cfg, total_rows))
    if cfg.dp_epsilon > 0:
        opened = denoise_sum(opened, parties=hist_sum.parties)
    test = _split_counts(opened, 0)
    if opened.size != 4 * HIST_BINS or hist_sum.parties < MIN_RELEASE_PARTIES:
        return test
    bad, good = (np.maximum(c, 0) for c in _split_counts(opened, 1))  # DP noise can go below 0
    return (*test, bad + good)


def local_update(
    cfg: RunConfig, data: BankData, prep: Preprocessor, total_rows: float,
    weights: list[np.ndarray], *, run_id: str, round_index: int,
    mask: PlaintextMask | None = None, summation: BankSummation | None = None,
) -> Sealed:
    """Train locally from the global weights; seal ``[(n_k/N) w_k, n_k/N]`` (masked with
    ``mask`` under a masked scheme)."""
    from federation.ml.training import train_round

    new, n_rows = train_round(cfg, prep, data.train, weights, round_index=round_index,
                              bank=data.bank)
    share = n_rows / total_rows
    vector = np.append(flatten(new) * share, share)
    return (summation or bank_summation(cfg, data.bank)).seal(
        vector, kind=KIND_WEIGHTS, run_id=run_id, round=round_index + 1, mask=mask)


def sealed_histograms(
    cfg: RunConfig, data: BankData, prep: Preprocessor, weights: list[np.ndarray], *,
    run_id: str, round_index: int, mask: PlaintextMask | None = None, total_rows: float = 0.0,
    summation: BankSummation | None = None,
) -> Sealed:
    """Score the bank's test rows with the global model; seal per-class histograms. After the
    last round the training rows' histograms follow (the calibration map is fitted on their
    sum, :mod:`federation.ml.calibration`), so the map is never fitted on the test rows.
    ``total_rows`` (the opened statistics' total) sets the public bound the counts are packed
    under (:func:`score_count_bound`; ScoreRowsError when this bank's rows break its rule)."""
    most = score_count_bound(cfg, total_rows)
    if most is not None:
        check_score_rows(cfg, train_rows=data.train.n_rows, test_rows=data.test.n_rows)
    from federation.ml.training import evaluate_histograms

    parts = list(evaluate_histograms(cfg, prep, data.test, weights))
    if round_index + 1 == cfg.rounds_planned:
        parts += evaluate_histograms(cfg, prep, data.train, weights)
    if cfg.dp_epsilon > 0:
        parts = _noised(cfg, data, parts)
    return (summation or bank_summation(cfg, data.bank)).seal(
        np.concatenate(parts), kind=KIND_COUNTS, run_id=run_id, round=round_index + 1,
        mask=mask, most=most)


def _noised(cfg: RunConfig, data: BankData, parts: list[np.ndarray]) -> list[np.ndarray]:
    """The histogram parts under DP: the test rows' with the noise of one of ``rounds``
    releases (:func:`histogram_noise_of`), the training rows' with the plan's one-off noise."""
    from federation.ml.training import histogram_noise_of, training_privacy

    noise = [histogram_noise_of(cfg, data.train.n_rows),
             training_privacy(cfg, data.train.n_rows).stats_noise_multiplier]
    return [noisy_histograms(parts[i], parts[i + 1], noise_multiplier=noise[i // 2],
                             most=2**COUNT_BITS - 1) for i in range(0, len(parts), 2)]


def sealed_length(cfg: RunConfig, data: BankData, kind: str, sealed_round: int, *,
                  layout: FeatureLayout, prep: Preprocessor | None) -> int:
    """Values in the vector this bank seals for ``kind`` in ``sealed_round`` (what a SecAgg+
    session's mask length follows from; equal at every bank, checked by the coordinator)."""
    if kind == KIND_STATS:
        return int(local_stats_vector(data.train, layout).size)
    if cfg.model == "gbdt" and prep is not None:  # boosted trees: an upper bound
        from federation.steps.tree_masking import tree_session_values

        return tree_session_values(cfg, prep, kind)
    if kind == KIND_WEIGHTS:
        if prep is None:
            raise ProtocolError("a weights masking session needs the combined stats first.")
        return sum(int(w.size) for w in _initial_weights(cfg, prep.n_features)) + 1
    # the last round's histograms also carry the training rows' (calibration)
    return (4 if sealed_round == cfg.rounds_planned else 2) * HIST_BINS
