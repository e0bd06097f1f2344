"""Raw maths of ECDH-PSI on Curve25519: hash identifiers to points and blind them with X25519.

This is the low-level layer (as cryptography's hazmat): no session checks, no message framing.
Use the recipe :func:`protocols.psi.ecdh.psi_intersect` or the protocol steps in ``protocols.psi.ecdh``.

The maths
---------
Points are x-only u-coordinates, 32 bytes little-endian (RFC 7748). An identifier ``x`` is
hashed to ``H(x) = SHA-256(b"fedcredit-psi-v1" || session_id || salt || x)`` with the top bit
cleared, read as a u-coordinate. Blinding with a secret 32-byte scalar ``k`` is the X25519
function ``k * P`` (``k`` clamped: a multiple of the cofactor 8 with bit 254 set). Clamped
scalars commute, ``a * (b * P) == b * (a * P)``, which is what makes the intersection work.

Security assumption
-------------------
A u-coordinate lies on Curve25519 or on its quadratic twist; both have a large prime-order
subgroup (cofactors 8 and 4) and clamping clears the cofactor, so every blinded value lies in a
prime-order group. Hiding an identifier rests on the decisional Diffie-Hellman assumption in
those groups with ``H`` modelled as a random oracle (the Meadows / Huberman-Franklin-Hogg
DH-PSI argument). Hashing straight to a u-coordinate (rather than Elligator 2) is the usual
engineering shortcut; nobody knows a discrete logarithm of ``H(x)``. Scalars must be fresh per
session and never leave their owner. A received point of low order blinds to the all-zero
value whatever the scalar; it carries no identifier, so it is rejected as a sign of a faulty or
malicious peer.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocols.errors import MalformedPointError

POINT_SIZE = 32
SCALAR_SIZE = 32
HASH_DOMAIN = b"fedcredit-psi-v1"
#: Sets smaller than this are blinded in-process; starting workers costs ~0.3 s.
PARALLEL_THRESHOLD = 50_000
_CHUNKS_PER_WORKER = 4
_TOP_BYTE = POINT_SIZE - 1


def hash_ids_to_points(ids: Sequence[bytes], *, session_id: bytes, salt: bytes) -> bytes:
    """Hash identifiers to u-coordinates bound to one session: protocol step 0 of each party.

    Parameters
    ----------
    ids : sequence of bytes
        Encoded identifiers (e.g. UTF-8 of a credit code).
    session_id, salt : bytes
        Fixed-length session values agreed by both parties; they make points of one session
        useless in another (no precomputed dictionaries, no cross-session linking).

    Returns
    -------
    bytes
        ``len(ids) * 32`` bytes: point ``i`` at ``[32 * i, 32 * i + 32)``.
    """
    prefix = hashlib.sha256(HASH_DOMAIN + session_id + salt)
    out = bytearray(len(ids) * POINT_SIZE)
    for index, identifier in enumerate(ids):
        digest = prefix.copy()
        digest.update(identifier)
        start = index * POINT_SIZE
        out[start:start + POINT_SIZE] = digest.digest()
        out[start + _TOP_BYTE] &= 0x7F
    return bytes(out)


def point_count(points: bytes) -> int:
    """Return how many points a blob holds.

    Raises
    ------
    MalformedPointError
        If the length is not a multiple of 32 bytes.
    """
    if len(points) % POINT_SIZE:
        raise MalformedPointError(
            f"a point blob is a multiple of {POINT_SIZE} bytes, got {len(points)}; the sender "
            "truncated or padded it: discard the message and rerun the PSI session")
    return len(points) // POINT_SIZE


def _point_matrix(points: bytes) -> np.ndarray:
    return np.frombuffer(points, dtype=np.uint8).reshape(point_count(points), POINT_SIZE)


def lexicographic_order(points: bytes) -> np.ndarray:
    """Return the permutation that sorts the points as byte strings."""
    words = _point_matrix(points).view(">u8")
    return np.lexsort(words.T[::-1])


def check_received_points(points: bytes) -> int:
    """Reject a peer's blob unless every point is a canonical, distinct u-coordinate.

    Parameters
    ----------
    points : bytes
        Points as received from the other party.

    Returns
    -------
    int
        Number of points.

    Raises
    ------
    MalformedPointError
        Wrong length, top bit set, value ``>= 2^255 - 19`` (never output by X25519), or a
        repeated point (honest parties send sets). Discard the message and rerun the session.
    """
    matrix = _point_matrix(points)
    top = matrix[:, _TOP_BYTE]
    non_canonical = (top >= 0x80) | (
        (top == 0x7F) & np.all(matrix[:, 1:_TOP_BYTE] == 0xFF, axis=1) & (matrix[:, 0] >= 0xED))
    if np.any(non_canonical):
        index = int(np.argmax(non_canonical))
        raise MalformedPointError(f"point {index} is not a canonical X25519 u-coordinate; "
                                  "discard the message and rerun the PSI session")
    ordered = matrix[lexicographic_order(points)]
    if len(ordered) > 1 and np.any(np.all(ordered[1:] == ordered[:-1], axis=1)):
        raise MalformedPointError("the point set holds a repeated point; an honest party sends "
                                  "distinct points: discard the message and rerun the session")
    return len(matrix)


def _blind_chunk(scalar: bytes, points: bytes, first_index: int) -> bytes:
    """Blind points in this process; ``first_index`` only numbers points in error messages."""
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    load = X25519PublicKey.from_public_bytes
    starts = range(0, len(points), POINT_SIZE)
    try:
        return b"".join([exchange(load(points[start:start + POINT_SIZE])) for start in starts])
    except ValueError as exc:
        failed = exc
    for start in starts:  # slow path, only to name the offending point
        try:
            exchange(load(points[start:start + POINT_SIZE]))
        except ValueError:
            break
    raise MalformedPointError(
        f"point {first_index + start // POINT_SIZE} is a low-order point (its blinding is the "
        "all-zero value); the peer is faulty or malicious: discard the message and rerun "
        "the session") from failed


def default_workers() -> int:
    """Return the number of cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def blind_points(
    scalar: bytes,
    points: bytes,
    *,
    workers: int | None = None,
    parallel_threshold: int = PARALLEL_THRESHOLD,
) -> bytes:
    """Multiply every point by the secret scalar (X25519): one blinding layer.

    Used for both the first blinding of a party's own hashed identifiers and the second
    blinding of the points received from the other party. Order is preserved.

    Parameters
    ----------
    scalar : bytes
        The party's 32-byte secret for this session (clamped by X25519).
    points : bytes
        Concatenated 32-byte u-coordinates.
    workers : int, optional
        Processes to use; default: every core this process may use.
    parallel_threshold : int, default :data:`PARALLEL_THRESHOLD`
        Fewer points than this are blinded in-process. Larger sets use a ``spawn`` process
        pool; inside a daemonic process (which may not start children) pass ``workers=1``.

    Returns
    -------
    bytes
        The blinded points, same order and length.

    Raises
    ------
    MalformedPointError
        Wrong blob length, or a low-order point (blinding gives the all-zero value).
    ValueError
        If the scalar is not 32 bytes or ``workers`` is below 1.
    """
    if len(scalar) != SCALAR_SIZE:
        raise ValueError(f"a blinding scalar is {SCALAR_SIZE} bytes, got {len(scalar)}")
    count = point_count(points)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or count < max(parallel_threshold, 2):
        return _blind_chunk(scalar, points, 0)
    n_chunks = min(count, workers * _CHUNKS_PER_WORKER)
    bounds = np.linspace(0, count, n_chunks + 1).astype(int)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(_blind_chunk, scalar, points[lo * POINT_SIZE:hi * POINT_SIZE], int(lo))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        return b"".join(future.result() for future in futures)


def split_points(points: bytes) -> list[bytes]:
    """Split a blob into its 32-byte points."""
    point_count(points)
    return [points[start:start + POINT_SIZE] for start in range(0, len(points), POINT_SIZE)]
