"""The bank's and the credit center's SecureBoost steps between Flower messages.

The same protocol as :mod:`federation.steps.secureboost` (which runs both parties in one
process), cut at the message boundaries; each party keeps its own state object in its node
state (never sent). Inputs are each party's raw tree features of the aligned rows (gaps as NaN,
categories as codes: ``AlignedParty.tree_train`` / ``tree_test``), so splits learn where
missing values go.

Per tree: bank :func:`bank_gradients` (encrypted per-row ``(g, h)``) -> per level: center
:func:`center_level` (packed encrypted sums of the requested nodes) -> bank :func:`bank_decide`
(opens them, decides every split; asks the center to apply its own splits) -> center
:func:`center_apply` (records them in its lookup, returns the rows going left) -> bank
:func:`bank_apply`. Scoring: center :func:`center_branches` (each of its splits' branch for
every test row) -> bank :func:`bank_score`.

Security: see :mod:`protocols.secureboost.steps` (what each side learns) and
``docs/security.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from federation.errors import DataError
from federation.ml.calibration import calibration_counts
from federation.ml.gbdt import (
    BinEdges,
    GBDTConfig,
    Tree,
    TreeState,
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
from federation.ml.gbdt.trainer import Split, goes_left
from federation.ml.metrics import auc_ks_from_histograms, score_histograms
from federation.steps.vertical_bank import HeldOutReport
from protocols.errors import MalformedMessageError
from protocols.paillier.fast import key_holder_table_for
from protocols.secureboost.packing import GHPacking
from protocols.secureboost.steps import (
    CenterLookup,
    bank_encrypt_gradients,
    bank_open_histograms,
    center_histograms,
    center_partition,
    compress_sums,
)

__all__ = ["BankTrees", "CenterTrees", "bank_start", "center_start", "bank_gradients",
           "center_level", "bank_decide", "center_apply", "bank_apply", "center_branches",
           "bank_score", "bank_margins", "public_edges", "level_fields", "ints_to_bytes",
           "ints_from_bytes"]


def ints_to_bytes(values: list[int], width: int) -> bytes:
    """Big integers (ciphertexts) as fixed-width big-endian bytes."""
    return b"".join(int(v).to_bytes(width, "big") for v in values)


def ints_from_bytes(blob: bytes, width: int, *, limit: int) -> list[int]:
    """Inverse of :func:`ints_to_bytes`; refuses a length that is not a multiple of ``width``
    and values not below ``limit``."""
    if len(blob) % width:
        raise MalformedMessageError(f"a ciphertext list of {len(blob)} bytes is not made of "
                                    f"{width}-byte values.")
    out = [int.from_bytes(blob[i:i + width], "big") for i in range(0, len(blob), width)]
    if any(not 0 < v < limit for v in out):
        raise MalformedMessageError("a ciphertext is outside Z_{n^2}.")
    return out


def _width(public_key: PaillierPublicKey) -> int:
    return (2 * int(public_key.n).bit_length() + 7) // 8


@dataclass
class CenterTrees:
    """The center's own state: its codes, edges, split lookup and the tree in growth's inputs."""

    codes: NDArray[np.uint8]
    test_codes: NDArray[np.uint8]
    edges: BinEdges
    bank_key: PaillierPublicKey
    gradient_bits: int
    lookup: CenterLookup = field(default_factory=CenterLookup)
    flags: dict[int, tuple[bool, bool]] = field(default_factory=dict)
    ciphertexts: list[int] = field(default_factory=list)
    assignment: NDArray[np.int64] | None = None


@dataclass
class BankTrees:
    """The bank's own state: its codes, labels, keys, the trees and the tree in growth."""

    codes: NDArray[np.uint8]
    test_codes: NDArray[np.uint8]
    y: NDArray[np.int64]
    y_test: NDArray[np.int64]
    edges: BinEdges
    seen: BinEdges | None
    config: GBDTConfig
    private_key: PaillierPrivateKey
    margins: NDArray[np.float64] | None = None
    base: float = 0.0
    trees: list[Tree] = field(default_factory=list)
    center_nodes: list[dict[int, int]] = field(default_factory=list)
    state: TreeState | None = None
    assignment: NDArray[np.int64] | None = None
    g: NDArray[np.float64] | None = None
    h: NDArray[np.float64] | None = None
    pending: tuple[Split, ...] = ()


def public_edges(bank: BinEdges, center: BinEdges) -> BinEdges:
    """The edges the bank sees: its own, then the center's with placeholder cut points (their
    number only: the center's thresholds stay with the center)."""
    placeholder = tuple(tuple(float(i) for i in range(len(c))) for c in center.cuts)
    return BinEdges(bank.cuts + placeholder, bank.n_categories + center.n_categories, bank.n_bins)


def center_start(x_train: NDArray[np.float64], x_test: NDArray[np.float64], bins: int,
                 bank_key: PaillierPublicKey, *, gradient_bits: int,
                 n_categories: tuple[int, ...] = (),
                 ) -> tuple[CenterTrees, list[int]]:
    """The center bins its own columns; only their number of split positions (or categories)
    is sent."""
    edges = pooled_edges(x_train, bins, n_categories=n_categories)
    state = CenterTrees(bin_matrix(x_train, edges), bin_matrix(x_test, edges), edges, bank_key,
                        gradient_bits)
    return state, [k or len(c) for c, k in zip(edges.cuts, edges.n_categories, strict=True)]


def bank_start(x_train: NDArray[np.float64], x_test: NDArray[np.float64], y: NDArray[np.int64],
               y_test: NDArray[np.int64], config: GBDTConfig, private_key: PaillierPrivateKey,
               center_positions: list[int], *, n_categories: tuple[int, ...] = (),
               center_categorical: tuple[bool, ...] = ()) -> BankTrees:
    """The bank bins its own columns and sees the center's as placeholder bins (a categorical
    center column as its number of categories)."""
    edges = pooled_edges(x_train, config.bins, n_categories=n_categories)
    flags = center_categorical or (False,) * len(center_positions)
    center = BinEdges(tuple(() if cat else tuple(float(i) for i in range(k))
                            for k, cat in zip(center_positions, flags, strict=True)),
                      tuple(k if cat else 0 for k, cat in zip(center_positions, flags,
                                                               strict=True)), config.bins)
    state = BankTrees(bin_matrix(x_train, edges), bin_matrix(x_test, edges),
                      np.asarray(y, np.int64), np.asarray(y_test, np.int64), edges,
                      public_edges(edges, center), config, private_key)
    state.base = base_margin(label_sums(state.y))
    state.margins = np.full(len(state.y), state.base)
    return state


def _packing(bank: BankTrees) -> GHPacking:
    return GHPacking.for_rows(len(bank.y), gradient_bits=bank.config.gradient_bits,
                              key_bits=int(bank.private_key.public_key.n).bit_length())


def bank_gradients(bank: BankTrees) -> bytes:
    """Start the next tree: every row's ``(g, h)`` encrypted under the bank's key."""
    assert bank.margins is not None
    tree = len(bank.trees)
    bank.g, bank.h = start_tree(bank.y, bank.margins, row_ids=np.arange(len(bank.y)), tree=tree,
                                config=bank.config)
    bank.state, bank.assignment = new_tree(tree), np.zeros(len(bank.y), np.int64)
    bank.center_nodes.append({})
    scale = float(2**bank.config.gradient_bits)
    public = bank.private_key.public_key
    cts = bank_encrypt_gradients(np.rint(bank.g * scale).astype(np.int64),
                                 np.rint(bank.h * scale).astype(np.int64), public_key=public,
                                 packing=_packing(bank),
                                 table=key_holder_table_for(bank.private_key))
    return ints_to_bytes(cts, _width(public))


def level_fields(bank: BankTrees) -> tuple[bytes, list[int]]:
    """What the center needs for the next level: the row partition and the nodes to build."""
    assert bank.state is not None and bank.assignment is not None
    return bank.assignment.astype("<i4").tobytes(), list(level_request(bank.state).build)


def center_level(center: CenterTrees, *, ciphertexts: bytes | None, assignment: bytes,
                 build: list[int]) -> tuple[bytes, int]:
    """Encrypted, packed ``(G, H)`` sums per requested node, own feature and bin code."""
    key = center.bank_key
    if ciphertexts is not None:
        center.ciphertexts = ints_from_bytes(ciphertexts, _width(key), limit=int(key.n) ** 2)
    rows = center.codes.shape[0]
    if len(assignment) != 4 * rows or not center.ciphertexts:
        raise MalformedMessageError(f"the level request needs {rows} node ids and the tree's "
                                    "ciphertexts.")
    center.assignment = np.frombuffer(assignment, dtype="<i4").astype(np.int64)
    sums = center_histograms(center.ciphertexts, center.codes, center.assignment, build,
                             center.edges.n_bins + 1, public_key=key)
    packing = GHPacking.for_rows(rows, gradient_bits=center.gradient_bits,
                                 key_bits=int(key.n).bit_length())
    packed = compress_sums(sums, public_key=key, packing=packing)
    return ints_to_bytes(packed, _width(key)), len(sums)


def bank_decide(bank: BankTrees, packed: bytes, count: int) -> str:
    """Open the center's sums, decide the level; returns the center's splits to apply (JSON)."""
    assert bank.state is not None and bank.assignment is not None and bank.seen is not None
    assert bank.g is not None and bank.h is not None
    public = bank.private_key.public_key
    request = level_request(bank.state)
    own = local_histograms(bank.codes, bank.g, bank.h, bank.assignment, request, bank.edges)
    fc = bank.seen.n_features - bank.edges.n_features
    theirs = np.zeros((len(request.build), fc, bank.edges.n_bins + 1, 2))
    if count != theirs[..., 0].size:  # checked before anything is decrypted
        raise DataError(f"the center sent {count} sums, not the {theirs[..., 0].size} of "
                        "this level.")
    G, H = bank_open_histograms(ints_from_bytes(packed, _width(public), limit=int(public.n) ** 2),
                                count, private_key=bank.private_key, packing=_packing(bank))
    theirs[..., GRAD] = (G * 2.0**-bank.config.gradient_bits).reshape(theirs.shape[:3])
    theirs[..., HESS] = (H * 2.0**-bank.config.gradient_bits).reshape(theirs.shape[:3])
    bank.state, splits = choose_splits(bank.state, np.concatenate([own, theirs], axis=1),
                                       bank.seen, bank.config)
    fb = bank.edges.n_features
    for split in splits:
        if split.feature < fb:
            at = np.flatnonzero(bank.assignment == split.node)
            code = bank.codes[at, split.feature].astype(np.int64)
            left = goes_left(code, split.bin, split.categorical, split.default_left,
                             bank.edges.missing_code)
            bank.assignment[at] = np.where(left, split.left, split.right)
    bank.pending = tuple(s for s in splits if s.feature >= fb)
    return json.dumps([[s.node, s.feature - fb, s.bin, s.categorical, s.default_left]
                       for s in bank.pending])


def center_apply(center: CenterTrees, splits_json: str) -> tuple[list[int], bytes]:
    """Record the bank's choice of own splits; return their ids and the rows going left."""
    try:
        splits = [(int(n), int(f), int(b), bool(c), bool(d))
                  for n, f, b, c, d in json.loads(splits_json)]
    except (ValueError, TypeError, RecursionError) as exc:
        raise MalformedMessageError(f"the split list is malformed ({exc!s:.60}).") from exc
    assert center.assignment is not None
    ids, masks = [], []
    for node, feature, bin_, categorical, default_left in splits:
        if not 0 <= feature < center.edges.n_features:
            raise MalformedMessageError(f"split on center feature {feature}, which it lacks.")
        split_id = center.lookup.record(feature, bin_)
        center.flags[split_id] = (categorical, default_left)
        at = np.flatnonzero(center.assignment == node)
        masks.append(center_partition(center.lookup, split_id, center.codes[at],
                                      categorical=categorical, default_left=default_left,
                                      missing_code=center.edges.missing_code))
        ids.append(split_id)
    bits = np.packbits(np.concatenate(masks)) if masks else np.zeros(0, np.uint8)
    return ids, bits.tobytes()


def bank_apply(bank: BankTrees, ids: list[int], left_bits: bytes) -> bool:
    """Apply the center's splits; finish the tree when its last level is decided.

    Returns whether the tree is complete.
    """
    assert bank.state is not None and bank.assignment is not None and bank.margins is not None
    if len(ids) != len(bank.pending):
        raise MalformedMessageError(f"{len(ids)} split ids for {len(bank.pending)} center splits.")
    sizes = [int((bank.assignment == s.node).sum()) for s in bank.pending]
    left = np.unpackbits(np.frombuffer(left_bits, np.uint8), count=sum(sizes)).astype(bool) \
        if sizes else np.zeros(0, bool)
    start = 0
    for split, split_id, size in zip(bank.pending, ids, sizes, strict=True):
        at = np.flatnonzero(bank.assignment == split.node)
        part, start = left[start:start + size], start + size
        bank.assignment[at] = np.where(part, split.left, split.right)
        bank.center_nodes[-1][split.node] = split_id
    bank.pending = ()
    if not bank.state.done:
        return False
    values = leaf_values(bank.state, bank.config)
    bank.trees.append(finish_tree(bank.state, values))
    bank.margins = bank.margins + values[bank.assignment]
    bank.state = None
    return True


def center_branches(center: CenterTrees) -> bytes:
    """For every split the center holds, which test rows go left (bits, split id order)."""
    masks = [center_partition(center.lookup, i, center.test_codes, categorical=c,
                              default_left=d, missing_code=center.edges.missing_code)
             for i, (c, d) in sorted(center.flags.items())]
    return np.packbits(np.concatenate(masks)).tobytes() if masks else b""


def bank_score(bank: BankTrees, branches: bytes) -> HeldOutReport:
    """The test rows' AUC/KS and score histograms, and the counts of their calibration half
    (the center answering at its nodes)."""
    margins = bank_margins(bank, branches)
    p = 1.0 / (1.0 + np.exp(-margins))
    bad, good = score_histograms(bank.y_test, p)
    auc, ks = auc_ks_from_histograms(bad, good)
    return HeldOutReport(auc, ks, bad.tolist(), good.tolist(), *calibration_counts(bank.y_test, p))


def bank_margins(bank: BankTrees, branches: bytes) -> NDArray[np.float64]:
    """Route the test rows through the trees; the center's answers decide at its nodes."""
    rows = bank.test_codes.shape[0]
    n_ids = sum(len(n) for n in bank.center_nodes)
    left = np.unpackbits(np.frombuffer(branches, np.uint8), count=n_ids * rows).astype(
        bool).reshape(n_ids, rows) if n_ids else np.zeros((0, rows), bool)
    margins = np.full(rows, bank.base)
    fb = bank.edges.n_features
    for tree, nodes in zip(bank.trees, bank.center_nodes, strict=True):
        node = np.zeros(rows, np.int64)
        for _ in range(tree.n_nodes):
            inner = tree.left[node] >= 0
            if not inner.any():
                break
            n = node[inner]
            feature = tree.feature[n]
            own = feature < fb
            code = bank.test_codes[np.flatnonzero(inner), np.minimum(feature, fb - 1)].astype(
                np.int64)
            go = goes_left(code, tree.split_bin[n], tree.categorical[n], tree.default_left[n],
                           bank.edges.missing_code)
            ids = np.array([nodes.get(int(k), -1) for k in n])
            center_go = left[np.maximum(ids, 0), np.flatnonzero(inner)] if n_ids else go
            go = np.where(own, go, center_go)
            node[inner] = np.where(go, tree.left[n], tree.right[n])
        margins += tree.value[node]
    return margins
