"""Vertical SecureBoost with both parties in one process: the bank (labels + its features) and
the credit center (its features), over the shared pure-numpy tree steps.

Each tree: the bank encrypts every row's quantised ``(g, h)`` once under its own Paillier key;
per level it histograms its own features in the clear, the center sums the ciphertexts per
node, feature and bin of its features (:mod:`protocols.secureboost.steps`) and the bank opens
them; the split rule of :func:`federation.ml.gbdt.choose_splits` runs on both parties'
histograms side by side (the bank's features first). A split on a center feature is kept in the
center's :class:`~protocols.secureboost.steps.CenterLookup`; the bank's tree holds only its id
and a placeholder threshold, and the center answers the left/right partition. Every sum is
exact, so the trees equal those grown on the joined plaintext rows with the same bins.

This module runs the parties' steps in sequence and times each party's own work (the critical
path of a deployment); the Flower wiring sends the same values between nodes. Threat model and
what each side learns: :mod:`protocols.secureboost.steps` and ``docs/security.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from phe.paillier import PaillierPrivateKey

from federation.ml.gbdt import (
    BinEdges,
    GBDTConfig,
    GBDTModel,
    Tree,
    base_margin,
    bin_matrix,
    choose_splits,
    finish_tree,
    label_sums,
    leaf_values,
    level_request,
    local_histograms,
    new_tree,
    pooled_edges,
    start_tree,
)
from federation.ml.gbdt.histograms import GRAD, HESS
from protocols.paillier.fast import randomizer_table_for
from protocols.secureboost.packing import GHPacking
from protocols.secureboost.steps import (
    CenterLookup,
    bank_encrypt_gradients,
    bank_open_histograms,
    center_histograms,
    center_partition,
    compress_sums,
)

__all__ = ["VerticalTrees", "SecureBoostTimings", "public_edges", "train_secureboost_local",
           "route_vertical"]


@dataclass
class SecureBoostTimings:
    """Seconds of each party's own work, summed over the run."""

    bank_encrypt: float = 0.0
    bank_other: float = 0.0
    center: float = 0.0
    per_tree: list[float] = field(default_factory=list)

    @property
    def critical_path(self) -> float:
        """Both parties' work in sequence (the protocol alternates between them)."""
        return self.bank_encrypt + self.bank_other + self.center


@dataclass(frozen=True, eq=False)
class VerticalTrees:
    """The bank's trees (center splits as ids) and the center's own lookup table."""

    model: GBDTModel
    center_nodes: tuple[dict[int, int], ...]
    lookup: CenterLookup
    bank_features: int
    bank_edges: BinEdges
    center_edges: BinEdges


def public_edges(bank: BinEdges, center: BinEdges) -> BinEdges:
    """The edges the bank sees: its own, then the center's with placeholder cut points (their
    number only: the center's thresholds stay with the center)."""
    placeholder = tuple(tuple(float(i) for i in range(len(c))) for c in center.cuts)
    return BinEdges(bank.cuts + placeholder, bank.n_categories + center.n_categories, bank.n_bins)


def _quantised(values: NDArray[np.float64], bits: int) -> NDArray[np.int64]:
    return np.rint(values * float(2**bits)).astype(np.int64)


def train_secureboost_local(bank_X: NDArray[np.float64], y: NDArray[np.int64],
                            center_X: NDArray[np.float64], config: GBDTConfig, *,
                            private_key: PaillierPrivateKey,
                            bank_categories: Sequence[int] = (),
                            center_categories: Sequence[int] = (),
                            timings: SecureBoostTimings | None = None) -> VerticalTrees:
    """Grow ``config.trees`` trees on aligned rows split by columns between bank and center."""
    t = timings if timings is not None else SecureBoostTimings()
    public_key = private_key.public_key
    started = time.perf_counter()
    bank_edges = pooled_edges(bank_X, config.bins, n_categories=bank_categories)
    bank_codes = bin_matrix(bank_X, bank_edges)
    edges_seen = None
    t.bank_other += time.perf_counter() - started
    started = time.perf_counter()
    center_edges = pooled_edges(center_X, config.bins, n_categories=center_categories)
    center_codes = bin_matrix(center_X, center_edges)
    t.center += time.perf_counter() - started
    edges_seen = public_edges(bank_edges, center_edges)
    fb, fc = bank_edges.n_features, center_edges.n_features
    packing = GHPacking.for_rows(len(y), gradient_bits=config.gradient_bits,
                                 key_bits=int(public_key.n).bit_length())
    table = randomizer_table_for(public_key)
    start = base_margin(label_sums(y))
    margins = np.full(len(y), start)
    lookup, trees, center_nodes = CenterLookup(), [], []
    rows = np.arange(len(y))
    for tree_index in range(config.trees):
        tree_started = time.perf_counter()
        s = time.perf_counter()
        g, h = start_tree(y, margins, row_ids=rows, tree=tree_index, config=config)
        cts = bank_encrypt_gradients(_quantised(g, config.gradient_bits),
                                     _quantised(h, config.gradient_bits),
                                     public_key=public_key, packing=packing, table=table)
        t.bank_encrypt += time.perf_counter() - s
        state, assignment, nodes = new_tree(tree_index), np.zeros(len(y), np.int64), {}
        while not state.done:
            s = time.perf_counter()
            request = level_request(state)
            own = local_histograms(bank_codes, g, h, assignment, request, bank_edges)
            t.bank_other += time.perf_counter() - s
            s = time.perf_counter()
            n_codes = center_edges.n_bins + 1
            sums = center_histograms(cts, center_codes, assignment, request.build, n_codes,
                                     public_key=public_key)
            packed = compress_sums(sums, public_key=public_key, packing=packing)
            t.center += time.perf_counter() - s
            s = time.perf_counter()
            G, H = bank_open_histograms(packed, len(sums), private_key=private_key,
                                        packing=packing)
            theirs = np.zeros((len(request.build), fc, n_codes, 2))
            theirs[..., GRAD] = (G * 2.0**-config.gradient_bits).reshape(theirs.shape[:3])
            theirs[..., HESS] = (H * 2.0**-config.gradient_bits).reshape(theirs.shape[:3])
            state, splits = choose_splits(state, np.concatenate([own, theirs], axis=1),
                                          edges_seen, config)
            t.bank_other += time.perf_counter() - s
            for split in splits:
                at = np.flatnonzero(assignment == split.node)
                if split.feature < fb:
                    s = time.perf_counter()
                    code = bank_codes[at, split.feature].astype(np.int64)
                    left = code != split.bin if split.categorical else code <= split.bin
                    left = np.where(code == bank_edges.missing_code, split.default_left, left)
                    t.bank_other += time.perf_counter() - s
                else:
                    s = time.perf_counter()
                    split_id = lookup.record(split.feature - fb, split.bin)
                    left = center_partition(lookup, split_id, center_codes[at],
                                            categorical=split.categorical,
                                            default_left=split.default_left,
                                            missing_code=center_edges.missing_code)
                    nodes[split.node] = split_id
                    t.center += time.perf_counter() - s
                assignment[at] = np.where(left, split.left, split.right)
        s = time.perf_counter()
        values = leaf_values(state, config)
        trees.append(finish_tree(state, values))
        margins = margins + values[assignment]
        center_nodes.append(nodes)
        t.bank_other += time.perf_counter() - s
        t.per_tree.append(time.perf_counter() - tree_started)
    model = GBDTModel(start, tuple(trees), fb + fc, edges_seen.n_categories)
    return VerticalTrees(model, tuple(center_nodes), lookup, fb, bank_edges, center_edges)


def route_vertical(trees: VerticalTrees, bank_X: NDArray[np.float64],
                   center_X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Federated scoring: margins of rows, the center answering its own nodes' branches."""
    bank_codes = bin_matrix(bank_X, trees.bank_edges)
    center_codes = bin_matrix(center_X, trees.center_edges)
    margins = np.full(bank_X.shape[0], trees.model.base_margin)
    for tree, nodes in zip(trees.model.trees, trees.center_nodes, strict=True):
        margins += tree.value[_leaves(tree, nodes, trees, bank_codes, center_codes)]
    return margins


def _leaves(tree: Tree, nodes: dict[int, int], trees: VerticalTrees,
            bank_codes: NDArray[np.uint8], center_codes: NDArray[np.uint8]) -> NDArray[np.int64]:
    node = np.zeros(bank_codes.shape[0], dtype=np.int64)
    for _ in range(int(tree.n_nodes)):
        inner = np.flatnonzero(tree.left[node] >= 0)
        if not inner.size:
            break
        for n in np.unique(node[inner]):
            at = inner[node[inner] == n]
            if n in nodes:  # the center's split: it answers the branch
                left = center_partition(trees.lookup, nodes[n], center_codes[at],
                                        categorical=bool(tree.categorical[n]),
                                        default_left=bool(tree.default_left[n]),
                                        missing_code=trees.center_edges.missing_code)
            else:
                code = bank_codes[at, tree.feature[n]].astype(np.int64)
                left = code != tree.split_bin[n] if tree.categorical[n] else (
                    code <= tree.split_bin[n])
                left = np.where(code == trees.bank_edges.missing_code, tree.default_left[n],
                                left)
            node[at] = np.where(left, tree.left[n], tree.right[n])
    return node
