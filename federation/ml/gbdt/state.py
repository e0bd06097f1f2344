"""The plaintext codec of a boosting run's public state between two messages.

Between messages a bank keeps nothing: each reply carries a *state blob*, the banks' shared
public state of the run (bin edges, base margin, finished trees, the tree in growth with its
parents' summed histograms), which the coordinator forwards with the next request (sealed by
another layer). :func:`state_to_bytes` / :func:`state_from_bytes` are its one owner.

Format: compact JSON (sorted keys, no whitespace, ASCII) of ints, bools, floats as
``float.hex`` strings and float64 arrays as base64 of their little-endian bytes, so every
float survives bit for bit and *the same state always gives the same bytes* (the coordinator
compares the banks' blobs byte for byte). Reading is strict: anything malformed, of another
version, inconsistent or over :data:`MAX_STATE_BYTES` raises :class:`StateFormatError` naming
the field, and only the canonical encoding of a state is accepted.

Privacy: the state holds only public values, i.e. what every bank learns anyway: the summed
histograms of the open level's parents, the splits and the leaf values. No row, label or
gradient of a single bank is in it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from federation.errors import DataError
from federation.ml.gbdt.binning import BinEdges
from federation.ml.gbdt.config import MAX_DEPTH
from federation.ml.gbdt.model import GBDTModel, Tree
from federation.ml.gbdt.trainer import Split, TreeState

__all__ = ["SCHEMA_VERSION", "STATE_FORMAT", "MAX_STATE_BYTES", "StateFormatError",
           "BoostState", "state_to_bytes", "state_from_bytes"]

SCHEMA_VERSION = 2
STATE_FORMAT = "fedcredit-gbdt-state"
MAX_STATE_BYTES = 64 * 2**20
_TREE_ARRAYS: dict[str, type] = {"feature": np.int32, "split_bin": np.int32,
                                 "threshold": np.float64, "categorical": np.bool_,
                                 "default_left": np.bool_, "left": np.int32, "right": np.int32,
                                 "value": np.float64, "gain": np.float64, "hessian": np.float64}
_SPLIT_INTS = ("node", "feature", "bin", "left", "right")
_SPLIT_BOOLS = ("categorical", "default_left")
_SPLIT_FLOATS = ("threshold", "gain", "left_grad", "left_hess", "right_grad", "right_hess")
_GROWING_KEYS = ("tree", "depth", "open", "build", "derive", "grad", "hess", "splits",
                 "parent_hists", "done")


class StateFormatError(DataError):
    """State bytes are malformed, of an unsupported version, inconsistent or too large."""


def _fail(field: str, what: str) -> StateFormatError:
    return StateFormatError(f"boosting state field '{field}' {what}; the blob is corrupt or "
                            "from another release (restart the run on one release).")


@dataclass(frozen=True, eq=False)
class BoostState:
    """The banks' shared public state of a horizontal boosting run between two messages.

    Parameters
    ----------
    seq : int
        Sequence number of the request this state answers (>= 0).
    base_margin : float
        Starting margin of every row (log-odds of the pooled default rate).
    edges : BinEdges
        The run's bin edges.
    trees : tuple of Tree
        Finished trees, in order.
    growing : TreeState or None
        The tree in growth (None between trees).
    parties : int
        Contributors to the growing tree (0 when none yet, and always 0 between trees).
    validation : tuple of float
        Early stopping: the pooled validation log-loss of the first 1, 2, ... trees (empty
        without early stopping).
    stopped : bool
        Early stopping ended the run: ``trees`` were cut back to the best validation AUC and
        no tree grows any more.
    schema_version : int
        Version of the state format.
    """

    seq: int
    base_margin: float
    edges: BinEdges
    trees: tuple[Tree, ...]
    growing: TreeState | None
    parties: int = 0
    validation: tuple[float, ...] = ()
    stopped: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise _fail("v", f"is {self.schema_version!r:.20}, this build reads {SCHEMA_VERSION}")
        if type(self.seq) is not int or self.seq < 0:
            raise _fail("seq", f"must be an integer >= 0 (got {self.seq!r:.20})")
        if type(self.parties) is not int or self.parties < 0 or (
                self.growing is None and self.parties):
            raise _fail("parties", "must be an integer >= 0, and 0 between trees")
        if not isinstance(self.base_margin, float) or not math.isfinite(self.base_margin):
            raise _fail("base_margin", "must be a finite float")
        if not all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in self.validation):
            raise _fail("validation", "must hold finite validation losses >= 0")
        if self.stopped and self.growing is not None:
            raise _fail("stopped", "is set while a tree grows")

    def model(self) -> GBDTModel:
        """The finished trees as a :class:`GBDTModel` (base margin and feature types included)."""
        return GBDTModel(self.base_margin, self.trees, self.edges.n_features,
                         self.edges.n_categories)


# --- writing ---------------------------------------------------------------------------------

def _b64(values: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _tree_doc(tree: Tree) -> dict[str, Any]:
    return {name: _b64(getattr(tree, name)) if dtype is np.float64 else
            [bool(v) if dtype is np.bool_ else int(v) for v in getattr(tree, name)]
            for name, dtype in _TREE_ARRAYS.items()}


def _split_doc(split: Split) -> dict[str, Any]:
    doc: dict[str, Any] = {k: int(getattr(split, k)) for k in _SPLIT_INTS}
    doc |= {k: bool(getattr(split, k)) for k in _SPLIT_BOOLS}
    doc |= {k: float(getattr(split, k)).hex() for k in _SPLIT_FLOATS}
    return doc


def _growing_doc(state: TreeState) -> dict[str, Any]:
    return {"tree": int(state.tree), "depth": int(state.depth),
            "open": [int(n) for n in state.open], "build": [int(n) for n in state.build],
            "derive": [[int(v) for v in d] for d in state.derive],
            "grad": _b64(np.asarray(state.grad)), "hess": _b64(np.asarray(state.hess)),
            "splits": [_split_doc(s) for s in state.splits],
            "parent_hists": [[int(n), _b64(np.asarray(state.parent_hists[n]).ravel())]
                             for n in sorted(state.parent_hists)],
            "done": bool(state.done)}


def state_to_bytes(state: BoostState) -> bytes:
    """The canonical bytes of ``state`` (deterministic: equal states give equal bytes).

    Raises
    ------
    StateFormatError
        The encoding exceeds :data:`MAX_STATE_BYTES` (lower ``--depth``, ``--bins`` or the
        number of features).
    """
    edges = state.edges
    doc = {"format": STATE_FORMAT, "v": state.schema_version, "seq": state.seq,
           "base_margin": float(state.base_margin).hex(), "parties": state.parties,
           "edges": {"cuts": [_b64(np.asarray(c, dtype=np.float64)) for c in edges.cuts],
                     "n_categories": [int(k) for k in edges.n_categories],
                     "n_bins": int(edges.n_bins)},
           "trees": [_tree_doc(t) for t in state.trees],
           "growing": None if state.growing is None else _growing_doc(state.growing),
           "validation": [float(v).hex() for v in state.validation],
           "stopped": bool(state.stopped)}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")
    if len(data) > MAX_STATE_BYTES:
        raise StateFormatError(f"the boosting state takes {len(data)} bytes, over the "
                               f"{MAX_STATE_BYTES}-byte cap; lower --depth or --bins, or use "
                               "fewer features.")
    return data


# --- reading ---------------------------------------------------------------------------------

def _object(raw: Any, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict) or sorted(raw) != sorted(keys):
        raise _fail(field, f"must be an object with the keys {', '.join(sorted(keys))}")
    return raw


def _int(raw: Any, field: str, low: int = 0, high: int = 2**62) -> int:
    if type(raw) is not int or not low <= raw <= high:
        raise _fail(field, f"must be an integer in {low}..{high} (got {raw!r:.20})")
    return raw


def _bool(raw: Any, field: str) -> bool:
    if type(raw) is not bool:
        raise _fail(field, "must be true or false")
    return raw


def _list(raw: Any, field: str, length: int | None = None) -> list[Any]:
    if not isinstance(raw, list) or (length is not None and len(raw) != length):
        raise _fail(field, "must be a list" + (f" of {length} items" if length is not None
                                                  else ""))
    return raw


def _float(raw: Any, field: str) -> float:
    try:
        value = float.fromhex(raw) if isinstance(raw, str) else math.nan
    except (ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        raise _fail(field, "must be a finite float written with float.hex")
    return value


def _floats(raw: Any, field: str, length: int | None = None) -> NDArray[np.float64]:
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b"?"
    except (binascii.Error, ValueError):
        data = b"?"
    if len(data) % 8 or (length is not None and len(data) != 8 * length):
        raise _fail(field, "must be base64 of " + (f"{length} " if length is not None else "")
                    + "little-endian float64 values")
    values = np.frombuffer(data, dtype="<f8").astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise _fail(field, "holds NaN or infinite values")
    return values


def _ints(raw: Any, field: str, low: int, high: int) -> tuple[int, ...]:
    return tuple(_int(v, f"{field}[{i}]", low, high) for i, v in enumerate(_list(raw, field)))


def _edges(raw: Any) -> BinEdges:
    doc = _object(raw, "edges", ("cuts", "n_categories", "n_bins"))
    cuts = _list(doc["cuts"], "edges.cuts")
    cats = _ints(doc["n_categories"], "edges.n_categories", 0, 255)
    try:
        return BinEdges(tuple(tuple(float(v) for v in _floats(c, f"edges.cuts[{f}]"))
                              for f, c in enumerate(cuts)), cats,
                        _int(doc["n_bins"], "edges.n_bins", 2, 255))
    except StateFormatError:
        raise
    except DataError as exc:
        raise _fail("edges", f"is invalid ({exc!s:.120})") from exc


def _tree(raw: Any, field: str, edges: BinEdges) -> Tree:
    doc = _object(raw, field, tuple(_TREE_ARRAYS))
    n = len(_list(doc["feature"], f"{field}.feature"))
    arrays: dict[str, Any] = {}
    for name, dtype in _TREE_ARRAYS.items():
        where = f"{field}.{name}"
        if dtype is np.float64:
            arrays[name] = _floats(doc[name], where, n)
        elif dtype is np.bool_:
            arrays[name] = np.array([_bool(v, f"{where}[{i}]") for i, v in
                                     enumerate(_list(doc[name], where, n))], dtype=np.bool_)
        else:
            arrays[name] = np.array([_int(v, f"{where}[{i}]", -1, 2**31 - 1) for i, v in
                                     enumerate(_list(doc[name], where, n))], dtype=np.int32)
    try:
        tree = Tree(**arrays)
    except DataError as exc:
        raise _fail(field, f"is not a valid tree ({exc!s:.120})") from exc
    inner = tree.left >= 0
    if np.any(tree.feature[inner] < 0) or np.any(tree.feature[inner] >= edges.n_features):
        raise _fail(f"{field}.feature", f"must name features 0..{edges.n_features - 1}")
    return tree


def _split(raw: Any, field: str, edges: BinEdges) -> Split:
    doc = _object(raw, field, _SPLIT_INTS + _SPLIT_BOOLS + _SPLIT_FLOATS)
    values: dict[str, Any] = {k: _int(doc[k], f"{field}.{k}") for k in _SPLIT_INTS}
    values |= {k: _bool(doc[k], f"{field}.{k}") for k in _SPLIT_BOOLS}
    values |= {k: _float(doc[k], f"{field}.{k}") for k in _SPLIT_FLOATS}
    f, b = values["feature"], values["bin"]
    if f >= edges.n_features or b >= edges.split_bins(f):
        raise _fail(f"{field}.bin", "is not a split position of the edges")
    categorical = edges.n_categories[f] > 0
    expected = float(b) if categorical else edges.cuts[f][b]
    if values["categorical"] != categorical or values["threshold"] != expected:
        raise _fail(f"{field}.threshold", "does not match the edges")
    try:
        return Split(**values)
    except DataError as exc:
        raise _fail(field, f"is not a valid split ({exc!s:.120})") from exc


def _check_level(state: TreeState, n: int) -> None:
    """The invariants :func:`choose_splits` keeps between the nodes of the open level."""
    lefts = [s.left for s in state.splits]
    if lefts != list(range(1, n, 2)) or len({s.node for s in state.splits}) != len(lefts):
        raise _fail("growing.splits", "must give children ids 1, 2, ... in order, one split "
                    "per node")
    derived = {d[0] for d in state.derive}
    if len(state.open) != len(state.build) + len(state.derive) or set(state.open) != set(
            state.build) | derived or len(set(state.open)) != len(state.open):
        raise _fail("growing.open", "must be the built and the derived nodes")
    for i, (_, parent, sibling) in enumerate(state.derive):
        if parent not in state.parent_hists or sibling not in state.build:
            raise _fail(f"growing.derive[{i}]", "must name a kept parent and a built sibling")
    if state.done and (state.open or state.parent_hists):
        raise _fail("growing.done", "is true but nodes are still open")


def _growing(raw: Any, edges: BinEdges, n_trees: int) -> TreeState:
    doc = _object(raw, "growing", _GROWING_KEYS)
    tree = _int(doc["tree"], "growing.tree", n_trees, n_trees)
    depth = _int(doc["depth"], "growing.depth", 0, MAX_DEPTH)
    grad = _floats(doc["grad"], "growing.grad")
    n = grad.size
    hess = _floats(doc["hess"], "growing.hess", n)
    if n == 0 or np.any(hess < 0):
        raise _fail("growing.hess", "must hold one non-negative sum per node (at least one)")
    splits = tuple(_split(s, f"growing.splits[{i}]", edges)
                   for i, s in enumerate(_list(doc["splits"], "growing.splits")))
    shape = (edges.n_features, edges.n_bins + 1, 2)
    parents: dict[int, NDArray[np.float64]] = {}
    for i, item in enumerate(_list(doc["parent_hists"], "growing.parent_hists")):
        where = f"growing.parent_hists[{i}]"
        pair = _list(item, where, 2)
        node = _int(pair[0], where, 0, n - 1)
        if parents and node <= max(parents):
            raise _fail(where, "must list the parents once each, by increasing node")
        parents[node] = _floats(pair[1], where, int(np.prod(shape))).reshape(shape)
    derive = tuple(tuple(_ints(d, f"growing.derive[{i}]", 0, n - 1))
                   for i, d in enumerate(_list(doc["derive"], "growing.derive")))
    if any(len(d) != 3 for d in derive):
        raise _fail("growing.derive", "must hold (node, parent, sibling) triples")
    state = TreeState(tree, depth, _ints(doc["open"], "growing.open", 0, n - 1),
                      _ints(doc["build"], "growing.build", 0, n - 1),
                      tuple((d[0], d[1], d[2]) for d in derive), tuple(map(float, grad)),
                      tuple(map(float, hess)), splits, parents, _bool(doc["done"], "growing.done"))
    _check_level(state, n)
    return state


def _parse(data: bytes) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StateFormatError(f"boosting state must be bytes, got {type(data).__name__}.")
    if len(data) > MAX_STATE_BYTES:
        raise _fail("(document)", f"is {len(data)} bytes, over the {MAX_STATE_BYTES}-byte cap")
    try:
        raw = json.loads(bytes(data).decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail("(document)", "is not ASCII JSON") from exc
    doc = _object(raw, "(document)", ("format", "v", "seq", "base_margin", "parties", "edges",
                                      "trees", "growing", "validation", "stopped"))
    if doc["format"] != STATE_FORMAT:
        raise _fail("format", f"must be '{STATE_FORMAT}'")
    if type(doc["v"]) is not int or doc["v"] != SCHEMA_VERSION:
        raise _fail("v", f"is {doc['v']!r:.20}; this build reads version {SCHEMA_VERSION}")
    return doc


def state_from_bytes(data: bytes) -> BoostState:
    """Read bytes written by :func:`state_to_bytes`, checking every field.

    Raises
    ------
    StateFormatError
        Not ASCII JSON, another format or version, a missing, extra or mistyped field, NaN or
        infinite floats, arrays of the wrong length, a state inconsistent with its edges, a
        non-canonical encoding, or more than :data:`MAX_STATE_BYTES` bytes.
    """
    doc = _parse(data)
    edges = _edges(doc["edges"])
    trees = tuple(_tree(t, f"trees[{i}]", edges)
                  for i, t in enumerate(_list(doc["trees"], "trees")))
    growing = None if doc["growing"] is None else _growing(doc["growing"], edges, len(trees))
    validation = tuple(_float(v, f"validation[{i}]")
                       for i, v in enumerate(_list(doc["validation"], "validation")))
    state = BoostState(_int(doc["seq"], "seq"), _float(doc["base_margin"], "base_margin"),
                       edges, trees, growing, _int(doc["parties"], "parties"), validation,
                       _bool(doc["stopped"], "stopped"))
    if state_to_bytes(state) != bytes(data):
        raise _fail("(document)", "is not in canonical form (keys sorted, no whitespace, "
                    "floats as written by state_to_bytes)")
    return state
