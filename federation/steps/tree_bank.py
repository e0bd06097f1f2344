"""A bank's side of the horizontal boosted-tree protocol, as plain functions over its own rows.

Steps (after the shared schema/stats preprocessing of :mod:`federation.steps.horizontal_bank`):

1. :func:`seal_bins`: the bank's fine counts on the public grid (from the federated mean and
   standard deviation) and its ``[defaults, rows]``, sealed as counts. Every bank opens the
   sum into the same bin edges and base margin (:func:`open_tree_context`).
2. :func:`tree_level`, once per message: open the previous level's summed histograms, take the
   split decisions every bank takes (:func:`federation.ml.gbdt.choose_splits`, deterministic),
   finish a tree when its last level is decided, and seal this bank's histograms of the next
   level (kind ``gradients``: exact fixed point, so the sums equal the pooled sums bit for bit;
   only the bin cells the public edges allow, :func:`federation.ml.gbdt.histograms.compact_histograms`).
   The first message of every ``eval_every``-th tree (and the last message) also seals the
   bank's test-score histograms under the model so far, so that all banks report the same
   federated AUC/KS for those tree counts.
   (What follows the histograms in the sealed vector, and how the opened sums are read:
   :mod:`federation.steps.tree_evaluation`.)
3. :func:`tree_finalize`: the last AUC/KS and, when the run allows it, the model release.

Early stopping (``early_stopping_rounds = k``): each bank holds out its validation rows
(:func:`federation.ml.tree_features.validation_rows`) and fits on the rest; after every tree
it seals its validation vector (:mod:`federation.ml.gbdt.stopping`: per-class counts of the
validation scores for the AUC, or exact log-loss sums; after the test-score histograms where
those travel), so every bank opens the same pooled validation score per tree and applies the
pooled trainer's rule (stop after ``k`` trees without improvement; keep the best prefix, also
at the end), one more message re-scoring the kept trees.

Between messages the bank keeps nothing: the banks' shared public state (edges, finished trees,
the tree in growth with its summed parent histograms) travels as a blob sealed under the banks'
shared key (:mod:`federation.steps.shared_state`), which the coordinator forwards unread.

Security: honest-but-curious coordinator. What leaves the bank: its sealed fine counts, label
sums, histograms and score histograms (ciphertexts under Paillier) and the sealed state blob.
The banks learn the sums (every bank's histograms added up) and the trees; never another
bank's rows, labels, gradients or histograms, as long as every tree is grown by one fixed set
of banks (a bank that drops out in the middle of a tree stops the run; it may rejoin at the
next tree).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from federation.data.bank_data import BankData
from federation.data.table import CreditTable
from federation.ml.dp.releases import noisy_histograms
from federation.ml.dp.tree_releases import (
    DP_GRID_CELLS,
    clip_gradients,
    denoise_counts,
    noisy_counts,
    noisy_level,
    private_split_config,
)
from federation.ml.dp.trees import TreePrivacy, reference_noise_multiplier, tree_privacy
from federation.ml.gbdt import (
    BinEdges,
    FineGrid,
    GBDTModel,
    TreeState,
    base_margin,
    check_row_limit,
    choose_splits,
    edges_from_fine_counts,
    fine_counts,
    finish_tree,
    label_sums,
    leaf_values,
    level_request,
    local_histograms,
    new_tree,
    start_tree,
)
from federation.ml.gbdt.binning import DEFAULT_CELLS
from federation.ml.gbdt.gradients import sigmoid
from federation.ml.gbdt.histograms import compact_histograms, expand_histograms
from federation.ml.gbdt.state import BoostState, state_from_bytes, state_to_bytes
from federation.ml.gbdt.stopping import (
    validation_parts,
)
from federation.ml.gbdt.trainer import apply_splits
from federation.ml.metrics import HIST_BINS, score_histograms
from federation.ml.preprocess import FeatureLayout, Preprocessor
from federation.ml.tree_features import (
    tree_feature_names,
    tree_grid,
    tree_matrix,
    tree_row_ids,
    validation_rows,
)
from federation.run.config import RunConfig
from federation.steps.gradient_grid import GRADIENT_VALUE_BITS
from federation.steps.horizontal_bank import (
    check_not_dropped,
    open_preprocessing,
)
from federation.steps.secure_sum import (
    COUNT_BITS,
    KIND_COUNTS,
    KIND_GRADIENTS,
    Sealed,
    bank_summation,
)
from federation.steps.shared_state import bank_state_sealer
from federation.steps.tree_evaluation import (
    EVAL_LENGTH,
    awaits_stop,
    calibration_part,
    denoised_scores,
    eval_length,
    evaluation_metrics,
    evaluation_parts,
    hist_length,
    stop_rule,
    tree_margins,
)
from federation.wire.records import METRIC_AUC
from federation.wire.trees import (
    METRIC_DEPTH,
    METRIC_GROWING,
    METRIC_PARTIES,
    METRIC_STOPPED,
    METRIC_TREES_DONE,
    METRIC_VALID_LOSS,
    TreeRelease,
    edges_to_json,
)
from protocols.aggregation.secure_aggregation import PlaintextMask
from protocols.errors import ProtocolError


class TreeStepError(ProtocolError):
    """A tree request does not fit the banks' shared state (order, parties or sums)."""


@dataclass(frozen=True, eq=False)
class TreeContext:
    """What every bank derives once per run from the combined stats and bins."""

    prep: Preprocessor
    grid: FineGrid
    edges: BinEdges
    base_margin: float
    features: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class LevelReply:
    """A bank's answer to one level request."""

    sealed: Sealed
    blob: bytes
    metrics: dict[str, float]


_CONTEXT_CACHE: dict[tuple[str, str, str], TreeContext] = {}
_MATRIX_CACHE: dict[tuple[str, int, str, str, int, Preprocessor], NDArray[np.float64]] = {}


def _digest(sealed: Sealed) -> str:
    return hashlib.sha256(sealed.payload).hexdigest()


def _matrix(table: CreditTable, prep: Preprocessor, *, run_id: str, bank: int,
            part: str) -> NDArray[np.float64]:
    """The table's raw tree features (cached per run, bank and part)."""
    key = (run_id, bank, part, table.source, table.n_rows, prep)
    if key not in _MATRIX_CACHE:
        if len(_MATRIX_CACHE) > 16:
            _MATRIX_CACHE.clear()
        _MATRIX_CACHE[key] = tree_matrix(table, prep)
    return _MATRIX_CACHE[key]


@dataclass(frozen=True, eq=False)
class _Rows:
    """Rows of one part of the bank's training split: raw tree features, labels, row ids."""

    X: NDArray[np.float64]
    y: NDArray[np.int64]
    ids: NDArray[np.int64]


_ROWS_CACHE: dict[tuple[Any, ...], tuple[_Rows, _Rows | None]] = {}


def _training_rows(cfg: RunConfig, data: BankData, prep: Preprocessor, *,
                   run_id: str) -> tuple[_Rows, _Rows | None]:
    """The rows the trees are fitted on and, with early stopping, the held-out validation rows."""
    key = (run_id, data.bank, data.train.source, data.train.n_rows, prep,
           cfg.early_stopping_rounds, cfg.seed)
    if key not in _ROWS_CACHE:
        X = _matrix(data.train, prep, run_id=run_id, bank=data.bank, part="train")
        y, ids = data.train.y.astype(np.int64), tree_row_ids(data.train, data.bank)
        if not cfg.early_stopping_rounds:
            rows: tuple[_Rows, _Rows | None] = (_Rows(X, y, ids), None)
        else:
            held = validation_rows(ids, cfg.seed)
            rows = (_Rows(X[~held], y[~held], ids[~held]), _Rows(X[held], y[held], ids[held]))
        if len(_ROWS_CACHE) > 16:
            _ROWS_CACHE.clear()
        _ROWS_CACHE[key] = rows
    return _ROWS_CACHE[key]


def _grid(cfg: RunConfig, prep: Preprocessor) -> FineGrid:
    """The public fine grid of the bin counts (coarser under DP: fewer noisy cells)."""
    return tree_grid(prep, cells=DP_GRID_CELLS if cfg.dp_epsilon > 0 else DEFAULT_CELLS)


def _plan(cfg: RunConfig, data: BankData) -> TreePrivacy:
    """This bank's DP plan (``dp_epsilon > 0`` only), from its training rows."""
    return tree_privacy(cfg, data.train.n_rows)


def seal_bins(cfg: RunConfig, data: BankData, layout: FeatureLayout, stats_sum: Sealed, *,
              run_id: str, mask: PlaintextMask | None = None) -> Sealed:
    """Step 1: this bank's fine counts on the public grid and its ``[defaults, rows]`` (of the
    rows the trees are fitted on); ``mask``: the SecAgg+ session's (masked runs,
    :mod:`federation.steps.tree_masking`)."""
    prep, _ = open_preprocessing(cfg, data.bank, layout, stats_sum, run_id=run_id)
    fit, _ = _training_rows(cfg, data, prep, run_id=run_id)
    grid = _grid(cfg, prep)
    counts = fine_counts(fit.X, grid)
    vector = np.concatenate([counts.ravel().astype(np.float64), label_sums(fit.y)])
    if cfg.dp_epsilon > 0:  # noised before sealing (federation.ml.dp.tree_releases)
        vector = noisy_counts(vector, noise_multiplier=_plan(cfg, data).stats_noise_multiplier,
                              n_features=grid.n_features, most=2**COUNT_BITS - 1)
    return bank_summation(cfg, data.bank).seal(vector, kind=KIND_COUNTS, run_id=run_id, round=0,
                                               mask=mask)


def open_tree_context(cfg: RunConfig, bank: int, layout: FeatureLayout, stats_sum: Sealed,
                      bins_sum: Sealed, *, run_id: str) -> TreeContext:
    """Edges and base margin from the combined bins (the same on every bank; cached)."""
    key = (run_id, _digest(stats_sum), _digest(bins_sum))
    if key not in _CONTEXT_CACHE:
        prep, _ = open_preprocessing(cfg, bank, layout, stats_sum, run_id=run_id)
        grid = _grid(cfg, prep)
        total = bank_summation(cfg, bank).open(bins_sum, kind=KIND_COUNTS, run_id=run_id, round=0)
        if cfg.dp_epsilon > 0:
            total = denoise_counts(total, parties=bins_sum.parties)
        cells = grid.n_features * grid.cells
        if total.size != cells + 2:
            raise TreeStepError(f"the combined bins hold {total.size} values, not the "
                                f"{cells + 2} of this run's grid; the banks disagree on the schema.")
        edges = edges_from_fine_counts(np.rint(total[:cells]).reshape(grid.n_features, grid.cells),
                                       grid, cfg.bins)
        check_row_limit(float(total[-1]), cfg.gbdt_config())
        _CONTEXT_CACHE[key] = TreeContext(prep, grid, edges, base_margin(total[-2:]),
                                          tree_feature_names(prep))
    return _CONTEXT_CACHE[key]


def _model(state: BoostState) -> GBDTModel:
    return GBDTModel(state.base_margin, state.trees, state.edges.n_features,
                     state.edges.n_categories)


def _assignment(codes: NDArray[np.uint8], growing: TreeState, edges: BinEdges) -> NDArray[np.int64]:
    """Each training row's node in the tree in growth (the splits decided so far, replayed)."""
    assignment = np.zeros(codes.shape[0], dtype=np.int64)
    for _ in range(growing.depth):
        assignment = apply_splits(codes, assignment, growing.splits, edges)
    return assignment


def _initial_state(ctx: TreeContext) -> BoostState:
    return BoostState(seq=0, base_margin=ctx.base_margin, edges=ctx.edges, trees=(),
                      growing=None, parties=0)


def _open_state(cfg: RunConfig, bank: int, ctx: TreeContext, blob: tuple[bytes, int] | None, *,
                run_id: str, seq: int) -> BoostState:
    if blob is None:
        return _initial_state(ctx)
    data, blob_seq = blob
    if blob_seq >= seq:
        raise TreeStepError(f"request {seq} carries the state of request {blob_seq}; the state "
                            "must come from an earlier request.")
    state = state_from_bytes(bank_state_sealer(cfg, bank).open(data, run_id=run_id, seq=blob_seq))
    if state.seq != blob_seq:
        raise TreeStepError(f"the state blob says it answers request {state.seq}, the request "
                            f"says {blob_seq}.")
    if state.edges != ctx.edges or state.base_margin != ctx.base_margin:
        raise TreeStepError("the state's bin edges or base margin differ from the ones this "
                            "bank derived from the combined bins.")
    return state


def _decide(cfg: RunConfig, state: BoostState, level_sum: Sealed | None, *, bank: int, run_id: str,
            ) -> tuple[BoostState, dict[str, float], NDArray[np.float64] | None]:
    """Open the previous level's sums and take the split decisions (the same on every bank)."""
    if level_sum is None:
        if state.growing is not None or state.trees:
            raise TreeStepError("the request lacks the summed histograms of the previous level.")
        return state, {}, None
    opened = bank_summation(cfg, bank).open(level_sum, kind=KIND_GRADIENTS, run_id=run_id,
                                            round=state.seq)
    n_hist = hist_length(state)
    n_eval = eval_length(cfg, state)
    if opened.size != n_hist + n_eval:
        raise TreeStepError(f"the summed level holds {opened.size} values, not the "
                            f"{n_hist + n_eval} this state asked for.")
    scores = opened[n_hist:]
    if cfg.dp_epsilon > 0:
        scores = denoised_scores(cfg, state, scores, parties=level_sum.parties)
    metrics = evaluation_metrics(cfg, state, scores)
    evaluation = scores[:EVAL_LENGTH] if METRIC_AUC in metrics else None
    if not state.stopped:
        state = stop_rule(cfg, state, metrics.get(METRIC_VALID_LOSS))
    growing, parties, trees = state.growing, state.parties, state.trees
    if growing is None:
        return state, metrics, evaluation
    if growing.depth == 0:
        parties = level_sum.parties
    elif level_sum.parties != state.parties:
        raise TreeStepError(f"tree {growing.tree} was started by {state.parties} banks but this "
                            f"level's sum has {level_sum.parties}; a tree is grown by one fixed "
                            "set of banks.")
    summed = expand_histograms(opened[:n_hist], len(growing.build), state.edges.used_codes())
    gcfg = cfg.gbdt_config()
    if cfg.dp_epsilon > 0:  # the public split rule under DP: no child on a noise-sized hessian
        gcfg = private_split_config(gcfg, noise_multiplier=reference_noise_multiplier(cfg),
                                    n_features=state.edges.n_features, parties=level_sum.parties)
    grown, _ = choose_splits(growing, summed, state.edges, gcfg)
    if grown.done:
        trees = trees + (finish_tree(grown, leaf_values(grown, gcfg)),)
        return replace(state, trees=trees, growing=None, parties=0), metrics, evaluation
    return replace(state, trees=trees, growing=grown, parties=parties), metrics, evaluation


def tree_level(cfg: RunConfig, data: BankData, ctx: TreeContext, *, run_id: str, seq: int,
               blob: tuple[bytes, int] | None, level_sum: Sealed | None,
               mask: PlaintextMask | None = None) -> LevelReply:
    """Step 2: decide the last level from its sums; seal this bank's next level (``mask``: the
    SecAgg+ session ``gradients:<seq>``'s, in masked runs).

    Raises
    ------
    TreeStepError
        The state or the sums do not answer this run's previous request.
    SimulatedDropout
        The drop schedule removes this bank from the current tree.
    """
    state = _open_state(cfg, data.bank, ctx, blob, run_id=run_id, seq=seq)
    state, metrics, _ = _decide(cfg, state, level_sum, bank=data.bank, run_id=run_id)
    growing = state.growing
    if growing is None and len(state.trees) < cfg.trees and not state.stopped:
        growing = new_tree(len(state.trees))
    check_not_dropped(cfg, data.bank, (growing.tree if growing else len(state.trees)) + 1)
    state = replace(state, seq=seq, growing=growing,
                    parties=state.parties if growing is not None and growing.depth > 0 else 0)
    parts = []
    if growing is not None:
        parts.append(_local_level(cfg, data, ctx, state, growing, run_id=run_id))
    test, valid = evaluation_parts(cfg, state)
    if test or valid or calibration_part(state):
        parts.append(_score_counts(cfg, data, ctx, state, run_id=run_id, test=test, valid=valid))
    vector = np.concatenate(parts) if parts else np.zeros(0)
    sealed = bank_summation(cfg, data.bank).seal(vector, kind=KIND_GRADIENTS, run_id=run_id,
                                                 round=seq, mask=mask)
    blob_out = bank_state_sealer(cfg, data.bank).seal(state_to_bytes(state), run_id=run_id, seq=seq)
    metrics |= {METRIC_TREES_DONE: len(state.trees),
                METRIC_GROWING: int(growing is not None or awaits_stop(cfg, state)),
                METRIC_DEPTH: growing.depth if growing is not None else 0,
                METRIC_PARTIES: state.parties, METRIC_STOPPED: int(state.stopped)}
    return LevelReply(sealed, blob_out, metrics)


def _local_level(cfg: RunConfig, data: BankData, ctx: TreeContext, state: BoostState,
                 growing: TreeState, *, run_id: str) -> NDArray[np.float64]:
    """This bank's histograms of the nodes the level request names (flattened)."""
    fit, _ = _training_rows(cfg, data, ctx.prep, run_id=run_id)
    codes = _codes(fit.X, ctx, run_id=run_id, bank=data.bank)
    margins = tree_margins(state, fit.X, run_id=run_id, bank=data.bank, part="fit")
    g, h = start_tree(fit.y, margins, row_ids=fit.ids, tree=growing.tree,
                      config=cfg.gbdt_config())
    if cfg.dp_epsilon > 0:
        g, h = clip_gradients(g, h)
    hist = local_histograms(codes, g, h, _assignment(codes, growing, ctx.edges),
                            level_request(growing), ctx.edges)
    values = compact_histograms(hist, ctx.edges.used_codes())
    if cfg.dp_epsilon > 0:  # noised before sealing (federation.ml.dp.tree_releases)
        values = noisy_level(values, noise_multiplier=_plan(cfg, data).noise_multiplier,
                             n_features=ctx.edges.n_features, gradient_bits=cfg.gradient_bits)
    return values


_CODES_CACHE: dict[tuple[str, int, BinEdges], NDArray[np.uint8]] = {}


def _codes(X: NDArray[np.float64], ctx: TreeContext, *, run_id: str, bank: int) -> NDArray[np.uint8]:
    from federation.ml.gbdt import bin_matrix

    key = (run_id, bank, ctx.edges)
    if key not in _CODES_CACHE or _CODES_CACHE[key].shape != X.shape:
        if len(_CODES_CACHE) > 16:
            _CODES_CACHE.clear()
        _CODES_CACHE[key] = bin_matrix(X, ctx.edges)
    return _CODES_CACHE[key]


def _score_counts(cfg: RunConfig, data: BankData, ctx: TreeContext, state: BoostState, *,
                  run_id: str, test: bool, valid: bool) -> NDArray[np.float64]:
    """Per-class histograms of this bank's test scores under the finished trees (``test``)
    and its validation vector (``valid``, early stopping)."""
    parts = []
    if test:
        X = _matrix(data.test, ctx.prep, run_id=run_id, bank=data.bank, part="test")
        margins = tree_margins(state, X, run_id=run_id, bank=data.bank, part="test")
        bad, good = score_histograms(data.test.y, sigmoid(margins))
        parts.append(_released_scores(cfg, data, bad, good, test=True))
    held = _training_rows(cfg, data, ctx.prep, run_id=run_id)[1] if valid else None
    if held is not None:
        valid_margins = tree_margins(state, held.X, run_id=run_id, bank=data.bank, part="valid")
        parts.append(validation_parts(held.y, valid_margins, cfg.early_stopping_metric))
    if calibration_part(state):  # the calibration map's fit rows
        fit, held = _training_rows(cfg, data, ctx.prep, run_id=run_id)
        rows, part = (held, "valid") if held is not None else (fit, "calibration")
        margins = tree_margins(state, rows.X, run_id=run_id, bank=data.bank, part=part)
        parts.append(_released_scores(cfg, data, *score_histograms(rows.y, sigmoid(margins)),
                                      test=False))
    return np.concatenate(parts)


def _released_scores(cfg: RunConfig, data: BankData, bad: NDArray[np.int64],
                     good: NDArray[np.int64], *, test: bool) -> NDArray[np.float64]:
    """``[bad..., good...]`` as sealed: exact, or under DP grouped and noised at the plan's
    test-histogram (``test``) or one-off (calibration) noise."""
    if cfg.dp_epsilon <= 0:
        return np.concatenate([bad, good]).astype(np.float64)
    plan = _plan(cfg, data)
    noise = plan.histogram_noise_multiplier if test else plan.stats_noise_multiplier
    return noisy_histograms(bad, good, noise_multiplier=noise,
                            most=2**GRADIENT_VALUE_BITS - 1).astype(np.float64)


def tree_finalize(cfg: RunConfig, data: BankData, ctx: TreeContext, *, run_id: str, seq: int,
                  blob: tuple[bytes, int] | None, level_sum: Sealed | None,
                  ) -> tuple[dict[str, float], TreeRelease | None, tuple[Any, Any] | None]:
    """Step 3: the final AUC/KS, and (when allowed) the model and summed score histograms."""
    state = _open_state(cfg, data.bank, ctx, blob, run_id=run_id, seq=seq)
    if state.growing is not None or awaits_stop(cfg, state) or (
            len(state.trees) != cfg.trees and not state.stopped):
        raise TreeStepError(f"finalize came after {len(state.trees)} of {cfg.trees} trees; "
                            "the coordinator must grow every tree first.")
    state, metrics, evaluation = _decide(cfg, state, level_sum, bank=data.bank, run_id=run_id)
    if not cfg.release_model:
        return metrics, None, None
    release = TreeRelease(_model(state).to_json(),
                          edges_to_json(ctx.edges.cuts, ctx.edges.n_categories, ctx.edges.n_bins),
                          ctx.features, ctx.prep.to_json())
    histograms = None
    if evaluation is not None:
        histograms = (np.rint(evaluation[:HIST_BINS]).astype(np.int64),
                      np.rint(evaluation[HIST_BINS:]).astype(np.int64))
    return metrics, release, histograms


def tree_model_of(release: TreeRelease) -> tuple[GBDTModel, BinEdges]:
    """The released model and its bin edges (for the run folder and the baselines)."""
    from federation.wire.trees import edges_fields

    cuts, cats, n_bins = edges_fields(release.edges_json)
    return GBDTModel.from_json(release.model_json), BinEdges(cuts, cats, n_bins)


__all__ = ["TreeStepError", "TreeContext", "LevelReply", "seal_bins", "open_tree_context",
           "tree_level", "tree_finalize", "tree_model_of"]
