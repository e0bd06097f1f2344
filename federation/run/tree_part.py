"""A SecureBoost model split between the bank and the credit center, and its serving steps.

Step (SecureBoost inference, as in training's held-out scoring): the bank holds the trees (its
own splits with their thresholds, the center's split nodes as split ids only, every leaf value)
and the base margin; the center holds, per split id, the feature and bin it chose and where
missing values go. At a query the center answers, for each of its split ids, the branch each
enterprise takes (one bit: left or right), computed from its own row; the bank routes the
enterprise down every tree, taking its own splits on its own row and the center's bits at the
center's nodes, and sums the leaf values::

    margin = base + sum_t value_t[leaf_t(x_B, bits_C)],   P(default) = 1 / (1 + exp(-margin))

so the split model scores every enterprise exactly as the trained federation does (tested
against :func:`federation.steps.secureboost.train_secureboost_local`'s margins).

Each part carries its own party's preprocessing (column names, category vocabularies) and bin
edges, so a party turns its own CSV rows into the bin codes training used. After training each
party's node writes its own part (:class:`TreeModelPart`, ``secureboost-part.json``) where a
vertical LR part goes (:func:`federation.steps.vertical_party.part_folder`: a deployed node's
``model-dir``, a simulation's ``parties/ROLE/``); ``fedcredit models promote`` reads it.

Security assumption: honest-but-curious parties. The center's part never leaves the center (the
bank never sees a center threshold or feature value); the bank learns one bit per center node
and enterprise it queries (the same bits training's held-out scoring reveals) and the center
learns which enterprises a bank asked about (its query log), not the trees or the score.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from federation.data.table import CreditTable
from federation.errors import RunFolderError
from federation.ml.gbdt import BinEdges, Tree, bin_matrix
from federation.ml.gbdt.trainer import goes_left
from federation.ml.preprocess import Preprocessor
from federation.ml.tree_features import tree_matrix
from federation.run.folder import atomic_write_text, find_party_file, read_party_text

TREE_KIND = "secureboost"
PART_FORMAT = "fedcredit-secureboost-part"
SCHEMA_VERSION = 1
TREE_PART_FILE = "secureboost-part.json"


def _edges_to_dict(edges: BinEdges) -> dict[str, Any]:
    return {"cuts": [list(c) for c in edges.cuts], "n_categories": list(edges.n_categories),
            "n_bins": edges.n_bins}


def _edges_from_dict(raw: dict[str, Any]) -> BinEdges:
    return BinEdges(tuple(tuple(float(v) for v in c) for c in raw["cuts"]),
                    tuple(int(k) for k in raw["n_categories"]), int(raw["n_bins"]))


@dataclass(frozen=True, eq=False)
class TreeBankPart:
    """The bank's part: trees (center nodes as split ids), base margin, its own bin edges."""

    base_margin: float
    trees: tuple[Tree, ...]
    center_nodes: tuple[dict[int, int], ...]
    edges: BinEdges
    preprocessor: Preprocessor
    n_center_splits: int

    def __post_init__(self) -> None:
        if len(self.center_nodes) != len(self.trees) or any(
                not 0 <= i < self.n_center_splits for n in self.center_nodes for i in n.values()):
            raise ValueError("each tree needs its map of center nodes to split ids below "
                             f"{self.n_center_splits}")

    def codes(self, table: CreditTable) -> NDArray[np.uint8]:
        """Bin codes of the bank's own rows (its columns, as in training)."""
        return bin_matrix(tree_matrix(table, self.preprocessor), self.edges)

    def margins(self, codes: NDArray[np.uint8], center_left: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Margins of rows with bank ``codes`` (n, F_B) and the center's bits (m, n)."""
        rows = codes.shape[0]
        if center_left.shape != (self.n_center_splits, rows):
            raise ValueError(f"the center answered {center_left.shape[0]} splits for "
                             f"{center_left.shape[1] if center_left.ndim == 2 else 0} rows; "
                             f"the model has {self.n_center_splits} for {rows}")
        fb, margins = self.edges.n_features, np.full(rows, self.base_margin)
        everyone = np.arange(rows)
        for tree, nodes in zip(self.trees, self.center_nodes, strict=True):
            ids = np.full(tree.n_nodes, -1, dtype=np.int64)
            ids[list(nodes)] = list(nodes.values())
            node = np.zeros(rows, np.int64)
            active = everyone[tree.left[node] >= 0]
            while active.size:
                at = node[active]
                feature = tree.feature[at]
                code = codes[active, np.minimum(feature, fb - 1)].astype(np.int64)
                go = goes_left(code, tree.split_bin[at], tree.categorical[at],
                               tree.default_left[at], self.edges.missing_code)
                theirs = feature >= fb
                go[theirs] = center_left[ids[at[theirs]], active[theirs]]
                node[active] = np.where(go, tree.left[at], tree.right[at])
                active = active[tree.left[node[active]] >= 0]
            margins += tree.value[node]
        return margins

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"kind": TREE_KIND, "base_margin": self.base_margin,
                "trees": [t.to_dict() for t in self.trees],
                "center_nodes": [[[int(k), int(v)] for k, v in sorted(n.items())]
                                 for n in self.center_nodes],
                "edges": _edges_to_dict(self.edges),
                "preprocessor": json.loads(self.preprocessor.to_json()),
                "n_center_splits": self.n_center_splits}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TreeBankPart:
        """Inverse of :meth:`to_dict` (KeyError/TypeError/ValueError when malformed)."""
        return cls(float(raw["base_margin"]), tuple(Tree.from_dict(t) for t in raw["trees"]),
                   tuple({int(k): int(v) for k, v in n} for n in raw["center_nodes"]),
                   _edges_from_dict(raw["edges"]),
                   Preprocessor.from_json(json.dumps(raw["preprocessor"])),
                   int(raw["n_center_splits"]))


@dataclass(frozen=True, eq=False)
class TreeCenterPart:
    """The center's part: per split id its feature, bin, kind and missing-value direction."""

    splits: tuple[tuple[int, int, bool, bool], ...]
    edges: BinEdges
    preprocessor: Preprocessor

    def __post_init__(self) -> None:
        if any(not 0 <= f < self.edges.n_features for f, _, _, _ in self.splits):
            raise ValueError("a center split names a feature the center's edges lack")

    def codes(self, table: CreditTable) -> NDArray[np.uint8]:
        """Bin codes of the center's own rows."""
        return bin_matrix(tree_matrix(table, self.preprocessor), self.edges)

    def branches(self, codes: NDArray[np.uint8]) -> NDArray[np.bool_]:
        """(m, n): row j goes left at split id i (the only thing the bank learns)."""
        if not self.splits:
            return np.zeros((0, codes.shape[0]), dtype=bool)
        feature, bin_, categorical, default_left = (np.asarray(c) for c in zip(*self.splits,
                                                                               strict=True))
        code = codes[:, feature].T.astype(np.int64)
        return goes_left(code, bin_[:, None], categorical[:, None], default_left[:, None],
                         self.edges.missing_code)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"kind": TREE_KIND, "splits": [list(s) for s in self.splits],
                "edges": _edges_to_dict(self.edges),
                "preprocessor": json.loads(self.preprocessor.to_json())}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TreeCenterPart:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple((int(f), int(b), bool(c), bool(d)) for f, b, c, d in raw["splits"]),
                   _edges_from_dict(raw["edges"]),
                   Preprocessor.from_json(json.dumps(raw["preprocessor"])))


def bank_tree_part(base_margin: float, trees: list[Tree], center_nodes: list[dict[int, int]],
                   edges: BinEdges, preprocessor: Preprocessor) -> TreeBankPart:
    """The bank's part from its state after training (``BankTrees``: ``base``, ``trees``,
    ``center_nodes``, ``edges``) and its own preprocessing."""
    splits = sum(len(n) for n in center_nodes)
    return TreeBankPart(base_margin, tuple(trees), tuple(dict(n) for n in center_nodes), edges,
                        preprocessor, splits)


def center_tree_part(splits: dict[int, tuple[int, int]], flags: dict[int, tuple[bool, bool]],
                     edges: BinEdges, preprocessor: Preprocessor) -> TreeCenterPart:
    """The center's part from its state after training (``CenterTrees``: ``lookup.splits``
    (id -> feature, bin), ``flags`` (id -> categorical, default left), ``edges``)."""
    if sorted(flags) != list(range(len(flags))) or set(splits) != set(flags):
        raise ValueError("the center's split ids must be 0..m-1, each with its flags")
    return TreeCenterPart(tuple((*splits[i], *flags[i]) for i in range(len(flags))), edges,
                          preprocessor)


def tree_model_id(run_id: str, bank_key: str, center_splits: int) -> str:
    """The id both parts of one SecureBoost run carry, from what both parties know: the run id,
    the fingerprint of the bank's Paillier key, and the number of center split ids."""
    text = f"{PART_FORMAT}|{run_id}|{bank_key}|{center_splits}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class TreeModelPart:
    """One party's SecureBoost part as its node writes it after training."""

    role: str
    run_id: str
    model_id: str
    part: TreeBankPart | TreeCenterPart
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        expected = TreeBankPart if self.role == "bank" else TreeCenterPart
        if self.role not in ("bank", "center") or not isinstance(self.part, expected):
            raise ValueError(f"role {self.role!r} does not match its part")

    def to_json(self) -> str:
        """The part file (format ``fedcredit-secureboost-part``, schema-versioned)."""
        return json.dumps({"format": PART_FORMAT, "schema_version": self.schema_version,
                           "role": self.role, "run_id": self.run_id, "model_id": self.model_id,
                           "part": self.part.to_dict()})

    @classmethod
    def from_json(cls, text: str, where: str) -> TreeModelPart:
        """Inverse of :meth:`to_json`; RunFolderError naming ``where`` otherwise."""
        try:
            doc = json.loads(text)
            if doc.get("format") != PART_FORMAT or doc.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"not a {PART_FORMAT} v{SCHEMA_VERSION} file")
            role = str(doc["role"])
            part = (TreeBankPart if role == "bank" else TreeCenterPart).from_dict(doc["part"])
            return cls(role, str(doc["run_id"]), str(doc["model_id"]), part)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RunFolderError(f"{where}: unreadable SecureBoost model part ({exc}); rerun "
                                 "`fedcredit vertical --model secureboost` to write it "
                                 "again.") from exc

    def write(self, folder: Path) -> Path:
        """Write the part into ``folder`` (write-then-rename); its path."""
        path = folder / TREE_PART_FILE
        atomic_write_text(path, self.to_json())
        return path


def find_tree_part(source: Path, role: str) -> Path | None:
    """The ``role``'s SecureBoost part in ``source``
    (:func:`~federation.run.folder.find_party_file`)."""
    return find_party_file(source, role, TREE_PART_FILE)


def read_tree_part(path: Path) -> TreeModelPart:
    """The part in ``path``."""
    text = read_party_text(path, "SecureBoost model part")
    return TreeModelPart.from_json(text, str(path))
