"""The center's answer to a partial-score request, as one compact binary frame.

Step: for the USCCs a bank sent, the center answers per enterprise whether it knows it, its
partial logit under the center's part of a split LR (0 for a tree model), the reasons it
publishes for its own columns, and, for a SecureBoost model, the branch each enterprise takes at
each of the center's split nodes (one bit per node and enterprise). One array per column, so a
batch of 10,000 costs a few copies, not 10,000 JSON objects to write and read back::

    b"FCPS" | u8 schema version | u32 header length | header (JSON: model_version, model_id,
    labels, rows n, reasons k, splits m) | found u8[n] | partial_logit <f8[n]
    | reason_label <i2[n*k] | reason_points <f8[n*k] | branches packbits(bool[m*n])

:func:`answer_to_bytes` / :func:`answer_from_bytes` are the pair; every malformed frame ends in
:class:`~protocols.errors.MalformedMessageError` (:class:`~protocols.byte_reader.ByteReader`).

Security assumption: the frame holds only what the center chose to publish: ``w_C . x_C``,
reason texts and branch bits, never a feature value or a split threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from protocols.byte_reader import ByteReader
from protocols.errors import MalformedMessageError

MEDIA_TYPE = "application/x-fedcredit-partial-scores"
MAGIC = b"FCPS"
SCHEMA_VERSION = 1
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True, eq=False)
class CenterAnswer:
    """The center's partial scores, aligned with the USCCs sent.

    ``found`` (n,) bool; ``partial_logit`` (n,) (0 where not found, and for trees);
    ``reason_label`` (n, k) indexes ``labels`` (-1: no reason); ``reason_points`` (n, k) the
    points each reason cost; ``branches`` (m, n) bool: enterprise j goes left at the center's
    split node i (SecureBoost; m = 0 for a linear model).
    """

    model_version: str
    model_id: str
    labels: tuple[str, ...]
    found: np.ndarray
    partial_logit: np.ndarray
    reason_label: np.ndarray
    reason_points: np.ndarray
    branches: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))

    def __post_init__(self) -> None:
        n = len(self.found)
        k = self.reason_label.shape[1] if self.reason_label.ndim == 2 else -1
        if (len(self.partial_logit) != n or self.reason_label.shape != (n, k)
                or self.reason_points.shape != (n, k)
                or (self.branches.size and self.branches.shape[1] != n)):
            raise ValueError("a center answer's columns must all have one row per USCC")

    @property
    def splits(self) -> int:
        """Number of center split nodes answered (0 for a linear model)."""
        return int(self.branches.shape[0]) if self.branches.size else 0

    def row(self, i: int) -> CenterAnswer:
        """Row ``i`` alone (what one coalesced query gets)."""
        branches = self.branches[:, i:i + 1] if self.splits else self.branches
        return CenterAnswer(self.model_version, self.model_id, self.labels,
                            self.found[i:i + 1], self.partial_logit[i:i + 1],
                            self.reason_label[i:i + 1], self.reason_points[i:i + 1], branches)


def answer_to_bytes(answer: CenterAnswer) -> bytes:
    """The frame of ``answer`` (see the module docstring)."""
    n, k = answer.reason_label.shape
    header = json.dumps({"model_version": answer.model_version, "model_id": answer.model_id,
                         "labels": list(answer.labels), "rows": n, "reasons": k,
                         "splits": answer.splits}, separators=(",", ":")).encode()
    bits = np.packbits(answer.branches.astype(bool).ravel()) if answer.splits else b""
    return b"".join([
        MAGIC, bytes([SCHEMA_VERSION]), len(header).to_bytes(4, "big"), header,
        np.asarray(answer.found, dtype=np.uint8).tobytes(),
        np.asarray(answer.partial_logit, dtype="<f8").tobytes(),
        np.asarray(answer.reason_label, dtype="<i2").tobytes(),
        np.asarray(answer.reason_points, dtype="<f8").tobytes(), bytes(bits)])


def answer_from_bytes(blob: bytes, rows: int) -> CenterAnswer:
    """The answer in ``blob``, which must hold ``rows`` enterprises.

    Raises
    ------
    MalformedMessageError
        Wrong magic or version, a bad header, a column of the wrong length, a reason index
        outside the labels, trailing bytes.
    """
    reader = ByteReader(blob, "center answer")
    if reader.take(4) != MAGIC or reader.uint(1) != SCHEMA_VERSION:
        raise MalformedMessageError(f"not a partial-score answer of schema version "
                                    f"{SCHEMA_VERSION}; update the older party")
    size = reader.uint(4)
    if size > MAX_HEADER_BYTES:
        raise MalformedMessageError("center answer header too large")
    try:
        head = json.loads(reader.take(size))
        labels = tuple(str(t) for t in head["labels"])
        n, k, m = int(head["rows"]), int(head["reasons"]), int(head["splits"])
        version, model_id = str(head["model_version"]), str(head["model_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedMessageError(f"center answer header is malformed ({type(exc).__name__})"
                                    ) from None
    if n != rows or k < 0 or m < 0 or k > 64:
        raise MalformedMessageError(f"center answer has {n} rows, {k} reasons, {m} splits for "
                                    f"{rows} USCCs")
    found = np.frombuffer(reader.take(n), dtype=np.uint8)
    logit = np.frombuffer(reader.take(8 * n), dtype="<f8")
    label = np.frombuffer(reader.take(2 * n * k), dtype="<i2").astype(np.int64).reshape(n, k)
    points = np.frombuffer(reader.take(8 * n * k), dtype="<f8").reshape(n, k)
    bits = reader.take((m * n + 7) // 8)
    reader.finish()
    if np.any(found > 1) or np.any(label >= len(labels)) or np.any(label < -1):
        raise MalformedMessageError("center answer holds a flag or reason index out of range")
    branches = (np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=m * n).astype(bool)
                .reshape(m, n) if m else np.zeros((0, 0), dtype=bool))
    return CenterAnswer(version, model_id, labels, found.astype(bool), logit.astype(np.float64),
                        label, points.astype(np.float64), branches)
