"""SecAgg+ masking of the boosted-tree sums (``model = "gbdt"`` under ``secagg`` or
``paillier-secagg``): which sessions a tree run opens, their mask lengths, prefix masks.

Protocol step: the masking of :mod:`federation.steps.masking` (advertise, share, mask,
[attest,] unmask) around every sum the trees seal:

- ``stats:0``: the shared preprocessing statistics (as in FedAvg);
- ``counts:0``: a bank's fine counts on the public grid and its label sums (tree step 1);
- ``gradients:<seq>``: the vector sealed by level request ``seq`` (tree step 2): the gradient
  and hessian histograms of the tree level in growth, and after them, where that request
  carries them, the test-score histograms, the early-stopping validation vector and the
  calibration histograms (the base score and the leaf sums follow from these sums).

A session is named by the request that seals into it, not by ``<tree>.<level>``: whether
request ``seq`` continues the tree in growth or starts the next one (or, after early stopping,
only re-scores the kept trees) is decided by the banks when they open the sums of request
``seq - 1``, after the session must have been opened. The request sequence number identifies
the level uniquely (the banks' state blob and the coordinator's audit map it to tree and
depth).

Lengths: a session's mask length must be fixed when it is opened, before the split decisions
of the previous levels are known, so every ``gradients`` session is opened for an upper bound
from public settings alone (:func:`tree_session_values`): the widest level of a tree of the
run's ``depth`` (``max(1, 2**(depth - 2))`` histogrammed nodes: the others are derived by
subtraction) times the bin codes any edges of the run can use, plus every evaluation part.
A bank masks the first ``m`` elements of that mask with its ``m`` plaintexts
(:class:`PrefixMask`) and the coordinator removes the first ``m`` elements of the residual
mask (:func:`federation.steps.masking.remove_residual_sealed`). Every element is masked by its
own pseudo-random element, so masking a prefix hides exactly what masking the whole vector
does; the unused tail costs PRG output only.

Cost (exchanges, Flower round trips): without masking a tree of depth ``D`` takes ``D`` level
requests. Masked, sessions are opened ``B = min(D, MAX_SESSIONS)`` at a time, with one
independent key set each (fresh X25519 keys and self-mask seed per session) in ONE advertise
and ONE share exchange, so a full-depth tree takes ``D`` level requests, ``D`` survivor-list
exchanges (the consistency round of :mod:`server.masking`), ``D`` unmask exchanges and 2
opening exchanges: ``3D + 2`` instead of ``D``, against ``5D`` with a session opened per
level. The bins and the stats add 4 exchanges each, once per run.

Security: as :mod:`federation.steps.masking` (a coordinator colluding with fewer than ``t``
banks of a neighbourhood learns the survivors' sums under ``secagg`` and nothing but
ciphertexts under ``paillier-secagg``). Keys are never shared across sessions: a bank that
sits out a level (its pairwise secret of that session is then revealed) keeps the secrets of
every other session. A tree is still grown by one fixed set of banks (:mod:`server.trees`); a
bank that answers a level after sitting out its tree's first level is listed as dropped in that
level's session (its vector is not summed; only its pairwise secret of that session is
revealed, its self mask is not, so its masked vector stays hidden).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from federation.ml.gbdt.stopping import validation_length
from federation.ml.metrics import HIST_BINS
from federation.ml.preprocess import Preprocessor
from federation.ml.tree_features import tree_categories, tree_grid
from federation.run.config import RunConfig
from federation.steps.masking import SessionMask
from federation.steps.secure_sum import KIND_COUNTS, KIND_GRADIENTS
from protocols.errors import ProtocolError, VectorLengthError

__all__ = ["PrefixMask", "tree_session_values", "histogram_nodes_bound", "session_batch"]

EVAL_VALUES = 2 * HIST_BINS
"""Values of one pair of per-class score histograms (bad, good)."""


def histogram_nodes_bound(depth: int) -> int:
    """Most nodes one level request of a tree of ``depth`` levels histograms: the root at
    depth 0, then one child of each split (the sibling is derived), ``2**(d - 1)`` at depth
    ``d``, up to depth ``depth - 1``."""
    return 1 << max(0, depth - 2)


def _codes_bound(cfg: RunConfig, prep: Preprocessor) -> int:
    """Bin codes any bin edges of this run can use, summed over the tree features: a numeric
    feature at most ``bins`` codes, a categorical one its ``k`` categories, each plus the
    missing code (:meth:`federation.ml.gbdt.binning.BinEdges.used_codes`)."""
    return sum((k if k else cfg.bins) + 1 for k in tree_categories(prep))


def tree_session_values(cfg: RunConfig, prep: Preprocessor, kind: str) -> int:
    """Values a bank's vector in a tree masking session of ``kind`` has at most (the mask
    length follows from this; equal at every bank, from the run config and the opened stats).

    Parameters
    ----------
    cfg : RunConfig
        A ``model = "gbdt"`` run.
    prep : Preprocessor
        The run's preprocessing, from the combined stats.
    kind : str
        ``counts`` (the bins: fine counts on the default grid, which no coarser grid exceeds,
        and the two label sums) or ``gradients`` (any level request's vector).

    Raises
    ------
    ProtocolError
        Another kind: a tree run masks no other sum after the stats.
    """
    if kind == KIND_COUNTS:
        grid = tree_grid(prep)
        return grid.n_features * grid.cells + 2
    if kind != KIND_GRADIENTS:
        raise ProtocolError(f"a boosted-tree run has no '{kind}' sums to mask after the stats.")
    histograms = histogram_nodes_bound(cfg.depth) * _codes_bound(cfg, prep) * 2
    scores = 2 * EVAL_VALUES  # test and calibration histograms (the final vector)
    valid = validation_length(cfg.early_stopping_metric) if cfg.early_stopping_rounds else 0
    return histograms + scores + valid


def session_batch(first: int, depth: int, limit: int) -> list[int]:
    """The level requests ``first, first + 1, ...`` whose sessions open together: one tree's
    worth (``depth``), at most ``limit`` (the sessions a masking bundle may name)."""
    return list(range(first, first + max(1, min(depth, limit))))


class PrefixMask(SessionMask):
    """Step 2 at a bank for a session opened for an upper bound: masks ``m <= length``
    plaintexts with the first ``m`` elements of the session's mask (callable once).

    The plaintexts are padded with zeros to the session's length, masked, and the first ``m``
    masked elements returned; the coordinator removes the first ``m`` residual elements.
    """

    def __call__(self, plaintexts: list[int]) -> list[int]:
        length = self._fits(len(plaintexts))
        padded: Sequence[int] = list(plaintexts) + [0] * (length - len(plaintexts))
        return super().__call__(list(padded))[:len(plaintexts)]

    def words(self, limbs: np.ndarray) -> np.ndarray:
        padded = np.zeros(self._fits(limbs.size), dtype=np.uint64)
        padded[:limbs.size] = limbs
        return super().words(padded)[:limbs.size]

    def _fits(self, count: int) -> int:
        """The session's length, once ``count`` plaintexts are known to fit it."""
        length = int(self.client.config.length)
        if count > length:
            raise VectorLengthError(f"masking session '{self.name}' was opened for "
                                    f"{length} plaintexts, the vector packs into "
                                    f"{count}; the banks disagree on the settings.")
        return length
