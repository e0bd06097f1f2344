"""Secure WOE/IV binning of the credit center's features against the bank's labels.

Protocol (rows aligned by PSI, same order at both parties)
---------------------------------------------------------
1. bank -> center, once per run: ``[[y_i]]_B`` for every row (:func:`encrypt_labels`).
2. center -> bank: for each of its features ``f`` with bin ids ``b_i in [0, k_f)``::

       [[bad_{f,b}]] = prod_{i: b_i = b} [[y_i]] * Enc_B(0)      (one multiplication per row)
       [[rows_{f,b}]] = Enc_B(number of rows in bin b)

   (:func:`sum_labels_per_bin`). ``Enc_B(0)`` here is a uniform ``r**n``
   (:mod:`protocols.paillier.rerandomize`), which re-randomises each sum for the bank.
3. bank: decrypts ``bad`` and ``rows`` per bin, ``good = rows - bad``
   (:func:`decrypt_bin_counts`), then WOE/IV with ``federation.ml.binning.woe_iv``.

Security
--------
Semi-honest bank, center and coordinator, no collusion; Paillier semantic security (DCR).
The center sees only ciphertexts of the labels; the coordinator only ciphertexts (bin sizes
travel encrypted too, so it does not learn the center's histograms). The bank learns,
per center feature, exactly the number of bad and good rows in each bin - the purpose of
the protocol - but not which row is in which bin: without the re-randomisation it could
recover each sum's randomness with its private key and match it against the randomness of
its own label ciphertexts. The fast randomiser ``hs**a`` of :mod:`protocols.paillier.fast`
would not do: it covers only the subgroup ``<h>``, so a character of the bank's own
randomness (of order 3 when ``3 | gcd(p-1, q-1)``) would survive in each sum. Tiny bins
say more (a bin of one row ties one of the bank's rows to a center attribute);
``min_bin_rows`` lets the center refuse them. A malicious bank could encrypt non-binary
"labels" (e.g. ``2**(20 i)``) to read bin membership; that is outside the semi-honest model
and needs range proofs.

Messages are canonical JSON with hex ciphertexts (``*_to_bytes`` / ``*_from_bytes``),
sent once per run: about ``2 * key_bits / 4`` bytes per row for the labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gmpy2 import mpz
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.aggregation.validation import check_ciphertexts
from protocols.errors import (
    KeyMismatchError,
    MalformedMessageError,
    PackingOverflowError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import RandomizerTable, RandomSource, encrypt_packed
from protocols.paillier.keys import key_fingerprint
from protocols.paillier.rerandomize import rerandomize_for_key_holder

__all__ = [
    "SCHEME", "SCHEMA_VERSION", "EncryptedLabels", "FeatureBins", "EncryptedBinCounts",
    "encrypt_labels", "sum_labels_per_bin", "decrypt_bin_counts", "validate_bin_counts",
    "encrypted_labels_to_bytes", "encrypted_labels_from_bytes",
    "encrypted_bin_counts_to_bytes", "encrypted_bin_counts_from_bytes",
]

SCHEME = "paillier-binning-v1"
SCHEMA_VERSION = 1
KIND_LABELS = "binning-labels"
KIND_COUNTS = "binning-counts"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _check_meta(fingerprint: str, run_id: str, scheme: str, schema_version: int) -> None:
    if scheme != SCHEME or schema_version != SCHEMA_VERSION:
        raise ValueError(f"scheme {scheme!r} v{schema_version} is not supported (this build "
                         f"reads {SCHEME} v{SCHEMA_VERSION})")
    if not isinstance(fingerprint, str) or not _HEX64.match(fingerprint):
        raise ValueError("key_fingerprint must be 64 lowercase hex characters")
    if not isinstance(run_id, str):
        raise ValueError("run_id must be a string")


def _check_cts(values: object, name: str) -> None:
    if not isinstance(values, tuple) or not values or any(
            isinstance(c, bool) or not isinstance(c, int) for c in values):
        raise ValueError(f"{name} must be a non-empty tuple of ints")


@dataclass(frozen=True, slots=True)
class EncryptedLabels:
    """``[[y_i]]_B`` for every aligned row, in row order (bank -> center)."""

    key_fingerprint: str
    run_id: str
    ciphertexts: tuple[int, ...] = field(repr=False)
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_meta(self.key_fingerprint, self.run_id, self.scheme, self.schema_version)
        _check_cts(self.ciphertexts, "ciphertexts")


@dataclass(frozen=True, slots=True)
class EncryptedBinCounts:
    """Per feature and bin: ``[[bad count]]`` and ``[[row count]]`` under the bank's key."""

    key_fingerprint: str
    run_id: str
    features: tuple[str, ...]
    bad: tuple[tuple[int, ...], ...] = field(repr=False)
    rows: tuple[tuple[int, ...], ...] = field(repr=False)
    scheme: str = SCHEME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_meta(self.key_fingerprint, self.run_id, self.scheme, self.schema_version)
        if (not isinstance(self.features, tuple) or not self.features
                or len(set(self.features)) != len(self.features)
                or not all(isinstance(f, str) for f in self.features)):
            raise ValueError("features must be a non-empty tuple of distinct names")
        if not (isinstance(self.bad, tuple) and isinstance(self.rows, tuple)
                and len(self.bad) == len(self.rows) == len(self.features)):
            raise ValueError("bad and rows need one tuple of ciphertexts per feature")
        for bad, rows in zip(self.bad, self.rows, strict=True):
            _check_cts(bad, "bad")
            _check_cts(rows, "rows")
            if len(bad) != len(rows):
                raise ValueError("bad and rows must have one ciphertext per bin")


@dataclass(frozen=True, slots=True, eq=False)
class FeatureBins:
    """The center's bin id per aligned row for one feature (``0 <= id < n_bins``)."""

    name: str
    bin_ids: np.ndarray
    n_bins: int

    def __post_init__(self) -> None:
        ids = np.asarray(self.bin_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"bin ids of {self.name!r} must be a 1-D integer array")
        if self.n_bins < 1 or (ids.size and (ids.min() < 0 or ids.max() >= self.n_bins)):
            raise ValueError(f"bin ids of {self.name!r} must lie in [0, {self.n_bins})")


def encrypt_labels(y: np.ndarray | Sequence[int], *, public_key: PaillierPublicKey,
                   run_id: str, rng: RandomSource | None = None,
                   table: RandomizerTable | None = None,
                   short_exponent: bool = False) -> EncryptedLabels:
    """Step 1 (bank): encrypt each 0/1 label under its own key.

    Raises
    ------
    ValueError
        A label is not 0 or 1.
    """
    labels = np.asarray(y).ravel()
    if labels.size == 0 or not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be a non-empty array of 0 and 1")
    cts = encrypt_packed([int(v) for v in labels], public_key, rng=rng, table=table,
                         short_exponent=short_exponent)
    return EncryptedLabels(key_fingerprint(public_key), run_id, tuple(cts))


def _validate_labels(labels: EncryptedLabels, public_key: PaillierPublicKey, run_id: str,
                     n_rows: int) -> None:
    if labels.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("labels are encrypted under another key than the bank's "
                               "announced key; ask the bank for its current public key")
    if labels.run_id != run_id:
        raise StaleRoundError(f"labels belong to run {labels.run_id!r}, expected {run_id!r}; "
                              "dropping them")
    if len(labels.ciphertexts) != n_rows:
        raise VectorLengthError(f"{len(labels.ciphertexts)} encrypted labels for {n_rows} "
                                "aligned rows; rerun the alignment")
    check_ciphertexts(labels.ciphertexts, public_key)


def _bin_products(bin_ids: np.ndarray, cts: list[mpz], n_bins: int, nsq: mpz) -> list[mpz]:
    sums = [mpz(1)] * n_bins
    for b, c in zip(bin_ids.tolist(), cts, strict=True):
        sums[b] = sums[b] * c % nsq
    return sums


def sum_labels_per_bin(labels: EncryptedLabels, bins: Sequence[FeatureBins], *,
                       bank_public_key: PaillierPublicKey, run_id: str,
                       min_bin_rows: int = 0, rng: RandomSource | None = None,
                       short_exponent: bool = False) -> EncryptedBinCounts:
    """Step 2 (center): homomorphic bad counts per bin, re-randomised, and encrypted sizes.

    Raises
    ------
    KeyMismatchError, StaleRoundError, VectorLengthError, InvalidCiphertextError
        ``labels`` is not the bank's message for these rows.
    ValueError
        A feature's bin ids do not cover the aligned rows, or a non-empty bin has fewer
        than ``min_bin_rows`` rows (merge bins and retry).
    """
    n_rows = len(labels.ciphertexts)
    _validate_labels(labels, bank_public_key, run_id, n_rows)
    nsq = mpz(bank_public_key.nsquare)
    cts = [mpz(c) for c in labels.ciphertexts]
    bad, rows = [], []
    for feature in bins:
        ids = np.asarray(feature.bin_ids)
        if ids.size != n_rows:
            raise ValueError(f"{feature.name!r} has {ids.size} bin ids for {n_rows} rows")
        sizes = np.bincount(ids, minlength=feature.n_bins)
        if np.any((sizes > 0) & (sizes < min_bin_rows)):
            raise ValueError(f"{feature.name!r} has a bin with fewer than {min_bin_rows} rows; "
                             "merge small bins before the secure binning")
        sums = _bin_products(ids, cts, feature.n_bins, nsq)
        bad.append(tuple(rerandomize_for_key_holder(sums, bank_public_key, rng=rng)))
        rows.append(tuple(encrypt_packed([int(s) for s in sizes], bank_public_key, rng=rng,
                                         short_exponent=short_exponent)))
    return EncryptedBinCounts(key_fingerprint(bank_public_key), run_id,
                              tuple(f.name for f in bins), tuple(bad), tuple(rows))


def decrypt_bin_counts(counts: EncryptedBinCounts, *, private_key: PaillierPrivateKey,
                       run_id: str, n_rows: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Step 3 (bank): ``{feature: (bad counts, good counts)}`` per bin.

    Raises
    ------
    KeyMismatchError, StaleRoundError, InvalidCiphertextError
        ``counts`` is not for this key and run.
    PackingOverflowError
        Decrypted counts are inconsistent (negative, bad > rows, or not summing to
        ``n_rows``): the message was tampered with or made under another key.
    """
    public_key = private_key.public_key
    validate_bin_counts(counts, public_key=public_key, run_id=run_id)
    out = {}
    for name, bad_cts, rows_cts in zip(counts.features, counts.bad, counts.rows, strict=True):
        plain = decrypt_raw_many(bad_cts + rows_cts, private_key, processes=1)
        bad = np.array(plain[:len(bad_cts)], dtype=object)
        rows = np.array(plain[len(bad_cts):], dtype=object)
        if np.any(bad > rows) or sum(rows) != n_rows:
            raise PackingOverflowError(f"decrypted counts of {name!r} are inconsistent with "
                                       f"{n_rows} rows; ask the center to resend them")
        out[name] = (bad.astype(np.int64), (rows - bad).astype(np.int64))
    return out


def validate_bin_counts(counts: EncryptedBinCounts, *, public_key: PaillierPublicKey,
                        run_id: str) -> EncryptedBinCounts:
    """Key, run and ciphertext checks on received bin counts; returns them unchanged."""
    if counts.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("bin counts are under another key; the center used a stale "
                               "bank public key")
    if counts.run_id != run_id:
        raise StaleRoundError(f"bin counts belong to run {counts.run_id!r}, expected "
                              f"{run_id!r}; dropping them")
    for bad, rows in zip(counts.bad, counts.rows, strict=True):
        check_ciphertexts(bad + rows, public_key)
    return counts


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("ascii")


def _loads(data: bytes, kind: str) -> dict[str, Any]:
    try:
        doc = json.loads(bytes(data).decode("ascii"))
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        # RecursionError: absurdly nested JSON from an untrusted sender
        raise MalformedMessageError(f"not a {kind} message (unreadable JSON)") from exc
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise MalformedMessageError(f"not a {kind} message; check the sender and step")
    return doc


def _hex_tuple(items: object) -> tuple[int, ...]:
    if not isinstance(items, list) or not all(isinstance(h, str) for h in items):
        raise TypeError("expected a list of hex strings")
    return tuple(int(h, 16) for h in items)


def encrypted_labels_to_bytes(msg: EncryptedLabels) -> bytes:
    """Canonical JSON (ciphertexts in hex)."""
    return _dumps({"kind": KIND_LABELS, "scheme": msg.scheme, "v": msg.schema_version,
                   "fp": msg.key_fingerprint, "run": msg.run_id,
                   "c": [format(c, "x") for c in msg.ciphertexts]})


def encrypted_labels_from_bytes(data: bytes, *, public_key: PaillierPublicKey, run_id: str,
                                n_rows: int) -> EncryptedLabels:
    """Parse and validate (key, run, one label per aligned row, ciphertexts in range)."""
    doc = _loads(data, KIND_LABELS)
    try:
        msg = EncryptedLabels(doc["fp"], doc["run"], _hex_tuple(doc["c"]), doc["scheme"],
                              doc["v"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"invalid encrypted labels: {exc}") from exc
    _validate_labels(msg, public_key, run_id, n_rows)
    return msg


def encrypted_bin_counts_to_bytes(msg: EncryptedBinCounts) -> bytes:
    """Canonical JSON (ciphertexts in hex)."""
    return _dumps({"kind": KIND_COUNTS, "scheme": msg.scheme, "v": msg.schema_version,
                   "fp": msg.key_fingerprint, "run": msg.run_id, "features": list(msg.features),
                   "bad": [[format(c, "x") for c in b] for b in msg.bad],
                   "rows": [[format(c, "x") for c in r] for r in msg.rows]})


def encrypted_bin_counts_from_bytes(data: bytes, *, public_key: PaillierPublicKey,
                                    run_id: str) -> EncryptedBinCounts:
    """Parse and validate (:func:`validate_bin_counts`) received bin counts."""
    doc = _loads(data, KIND_COUNTS)
    try:
        if not isinstance(doc["features"], list) or not isinstance(doc["bad"], list) \
                or not isinstance(doc["rows"], list):
            raise TypeError("features, bad and rows must be lists")
        msg = EncryptedBinCounts(doc["fp"], doc["run"], tuple(doc["features"]),
                                 tuple(_hex_tuple(b) for b in doc["bad"]),
                                 tuple(_hex_tuple(r) for r in doc["rows"]), doc["scheme"],
                                 doc["v"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"invalid encrypted bin counts: {exc}") from exc
    return validate_bin_counts(msg, public_key=public_key, run_id=run_id)
