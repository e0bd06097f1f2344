"""Each party's SecureBoost steps, over integers and Paillier ciphertexts (no Flower, no arrays
of another party's features).

One tree, with the bank holding the labels and its own features and the credit center holding
its features for the same (aligned) rows:

1. bank: :func:`bank_encrypt_gradients` - every row's quantised ``(g, h)`` as one ciphertext
   under the bank's own key (the dominant cost: one encryption per row and tree);
2. per level, center: :func:`center_histograms` - for each requested node, feature and bin the
   homomorphic sum of the ciphertexts of the node's rows in that bin (it knows which rows are
   in which node: the instance space, as in SecureBoost), then :func:`compress_sums` packs
   several sums into one ciphertext;
3. bank: :func:`bank_open_histograms` - decrypt and decode the ``(G, H)`` sums; the bank then
   finds the best split over both parties' features (public rule, exact sums);
4. when the split is the center's, center: :class:`CenterLookup` keeps ``(feature, bin)``
   under a split id and answers with the node's left/right partition (:func:`center_partition`);
   the bank learns the split id and the partition, never the feature's values or thresholds.

Threat model: honest-but-curious parties, no collusion with the relaying coordinator. The
center sees only ciphertexts under the bank's key (semantic security, DCR); the bank learns
the per-bin gradient/hessian sums of the center's features for each node (the known leak of
SecureBoost) and the partition of the rows at the center's splits. The packed sums go back to
the bank, which can read a ciphertext's randomness with its private key: a bare product of
its own per-row ciphertexts would carry the product of their randomness and so tell it which
rows are in which bin. :func:`compress_sums` therefore multiplies every packed ciphertext by
a uniform ``r**n`` (:mod:`protocols.paillier.rerandomize`). :func:`bank_open_histograms` opens
exactly the agreed count and refuses bits beyond the slots. A deviating center can still
send chosen (well-formed) sums and watch which split the bank picks; that is outside the
semi-honest model (``docs/security.md``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import gmpy2
import numpy as np
from numpy.typing import NDArray
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.errors import ProtocolError
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import RandomizerTable, RandomSource, encrypt_packed
from protocols.paillier.rerandomize import rerandomize_for_key_holder
from protocols.secureboost.packing import GHPacking

__all__ = ["SplitLookupError", "bank_encrypt_gradients", "center_histograms", "compress_sums",
           "bank_open_histograms", "CenterLookup", "center_partition"]


class SplitLookupError(ProtocolError):
    """A split id the center never issued, or a partition request for foreign rows."""


def bank_encrypt_gradients(g: NDArray[np.int64], h: NDArray[np.int64], *,
                           public_key: PaillierPublicKey, packing: GHPacking,
                           table: RandomizerTable | None = None,
                           rng: random.Random | None = None) -> list[int]:
    """Step 1 (bank): one ciphertext of ``g * 2**S + h`` per row, under the bank's key."""
    n = int(public_key.n)
    if len(g) != len(h) or len(g) > 1 << packing.rows_bits:
        raise ProtocolError(f"{len(g)} gradients for {len(h)} hessians, or more rows than the "
                            "packing sums; agree the packing for the run's rows.")
    plain = [packing.encode_row(int(a), int(b), n) for a, b in zip(g, h, strict=True)]
    return encrypt_packed(plain, public_key, table=table, rng=rng)


def center_histograms(ciphertexts: Sequence[int], codes: NDArray[np.uint8],
                      assignment: NDArray[np.int64], build: Sequence[int], n_codes: int, *,
                      public_key: PaillierPublicKey) -> list[int]:
    """Step 2 (center): encrypted ``(G, H)`` sums per requested node, feature and bin code.

    Parameters
    ----------
    ciphertexts : sequence of int
        The bank's per-row ciphertexts (row order of the aligned training rows).
    codes : numpy.ndarray
        The center's bin codes ``[row, feature]`` (its own data; never sent).
    assignment : numpy.ndarray
        Each row's node (the instance space the bank shared).
    build : sequence of int
        Nodes to histogram, in this order.
    n_codes : int
        Codes per feature (value bins + the missing code).

    Returns
    -------
    list of int
        Ciphertexts in ``[node, feature, code]`` order (flattened); an empty bin is the
        trivial encryption of 0 (``1``), which only the bank, who decrypts, can tell.
    """
    nsq = gmpy2.mpz(public_key.n) ** 2
    if len(ciphertexts) != codes.shape[0] or assignment.shape != (codes.shape[0],):
        raise ProtocolError(f"{len(ciphertexts)} ciphertexts for {codes.shape[0]} rows; the "
                            "parties' aligned rows differ.")
    cts = [gmpy2.mpz(c) for c in ciphertexts]
    out: list[int] = []
    for node in build:
        rows = np.flatnonzero(assignment == node)
        for f in range(codes.shape[1]):
            sums = [gmpy2.mpz(1)] * n_codes
            column = codes[rows, f]
            for code in np.unique(column):
                acc = gmpy2.mpz(1)
                for r in rows[column == code]:
                    acc = acc * cts[r] % nsq
                sums[int(code)] = acc
            out.extend(int(s) for s in sums)
    return out


def compress_sums(sums: Sequence[int], *, public_key: PaillierPublicKey,
                  packing: GHPacking, rng: RandomSource | None = None) -> list[int]:
    """Step 2b (center): pack ``slots_per_ciphertext`` sums per ciphertext (Horner's rule),
    each packed ciphertext re-randomised by a uniform ``r**n`` for the bank (key holder).

    ``rng`` defaults to :class:`random.SystemRandom`; a seeded rng is for tests only.
    """
    nsq = gmpy2.mpz(public_key.n) ** 2
    shift = gmpy2.mpz(1) << packing.slot_bits
    k, out = packing.slots_per_ciphertext, []
    for start in range(0, len(sums), k):
        chunk = sums[start:start + k]
        acc = gmpy2.mpz(1)
        for c in reversed(chunk):
            acc = gmpy2.powmod(acc, shift, nsq) * gmpy2.mpz(c) % nsq
        out.append(int(acc))
    return rerandomize_for_key_holder(out, public_key, rng=rng)


def bank_open_histograms(packed: Sequence[int], count: int, *, private_key: PaillierPrivateKey,
                         packing: GHPacking, processes: int = 1,
                         ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Step 3 (bank): decrypt the packed sums into ``count`` gradient and hessian integers."""
    k = packing.slots_per_ciphertext
    if len(packed) != -(-count // k):
        raise ProtocolError(f"{len(packed)} packed ciphertexts cannot hold exactly {count} sums "
                            f"of {k} per ciphertext.")
    n = int(private_key.public_key.n)
    residues = decrypt_raw_many(list(packed), private_key, processes=processes)
    grads, hesses = [], []
    for i, residue in enumerate(residues):
        for g, h in packing.unpack(int(residue), n, min(k, count - i * k)):
            grads.append(g)
            hesses.append(h)
    return np.array(grads, dtype=np.int64), np.array(hesses, dtype=np.int64)


@dataclass
class CenterLookup:
    """The center's own table of its splits: split id -> (feature, bin); never sent."""

    splits: dict[int, tuple[int, int]] = field(default_factory=dict)

    def record(self, feature: int, bin_: int) -> int:
        """Keep a chosen split; returns the id the bank uses for it."""
        split_id = len(self.splits)
        self.splits[split_id] = (int(feature), int(bin_))
        return split_id

    def get(self, split_id: int) -> tuple[int, int]:
        """The split behind an id; :class:`SplitLookupError` for an id never issued."""
        if split_id not in self.splits:
            raise SplitLookupError(f"split id {split_id} was never issued by this center.")
        return self.splits[split_id]


def center_partition(lookup: CenterLookup, split_id: int, codes: NDArray[np.uint8], *,
                     categorical: bool, default_left: bool, missing_code: int,
                     ) -> NDArray[np.bool_]:
    """Step 4 (center): which of the given rows go left at one of its splits.

    Numeric: codes ``<= bin`` go left; categorical: every category but ``bin`` goes left;
    missing values follow ``default_left`` (decided by the bank from the sums).
    """
    feature, bin_ = lookup.get(split_id)
    code = codes[:, feature].astype(np.int64)
    left = code != bin_ if categorical else code <= bin_
    return np.where(code == missing_code, default_left, left)
