"""CRT Paillier decryption with gmpy2, optionally spread over a process pool.

Maths
-----
For ``g = n + 1`` and ``n = p*q`` the plaintext of ``c`` is recovered modulo ``p`` and ``q``
separately and recombined (Paillier 1999, section 7; what :mod:`phe` does internally):

    m_p = L_p(c**(p-1) mod p**2) * h_p mod p,   L_p(x) = (x - 1) // p,
    h_p = L_p(g**(p-1) mod p**2)**-1 mod p        (likewise for q),
    m   = m_p + ((m_q - m_p) * p**-1 mod q) * p.

Two half-size exponentiations replace one full one (~3-4x faster than textbook
decryption). The result equals ``phe.PaillierPrivateKey.raw_decrypt``.

Security
--------
Only the holders of the private key (the banks) run this module. Worker processes
receive the primes as plain ints through a local pipe; nothing leaves the machine. The
worker module imports gmpy2 and the standard library only, so workers start fast.

Memo (``decrypt_raw_many(..., memo=True)``)
-------------------------------------------
Decryption is deterministic: the same ciphertext under the same key always opens to the same
plaintext. Every bank opens the *same* combined sums (the coordinator sends one sum to all of
them), and a bank opens a round's model sum twice (to evaluate it and to train on it). With
``memo=True`` a process remembers the plaintexts of the last :data:`MEMO_SIZE` ciphertexts it
decrypted, keyed by ``(n, ciphertext)``, and answers a repeat from memory: in a simulation one
Ray process hosting fifty banks decrypts each sum once instead of fifty times. The plaintexts
are the sums the process opened anyway, kept in the memory of the process that holds the
private key; a repeat answered from the memo is bit for bit what decrypting again gives, so no
check that follows (contribution tags, ranges, minimum contributors) changes. Callers whose
ciphertexts never repeat (vertical LR, PSI) leave it off.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import gmpy2
from gmpy2 import mpz
from phe.paillier import PaillierPrivateKey

__all__ = ["CrtDecryptionKey", "decrypt_raw_many", "PARALLEL_THRESHOLD", "MEMO_SIZE"]

#: Below this many ciphertexts, decryption stays in-process (a pool costs ~0.1 s to start).
PARALLEL_THRESHOLD = 128
MEMO_SIZE = 8192
"""Plaintexts a process remembers for ``memo=True`` (about 1 KB each at 2048 bits: ~8 MB);
a 1,000-bank round's sums take under 200 ciphertexts."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CrtDecryptionKey:
    """Precomputed CRT constants of one Paillier private key (primes ``p != q``).

    Secret: its ``repr`` is redacted so the primes never reach a log.
    """

    p: mpz
    q: mpz
    psquare: mpz
    qsquare: mpz
    hp: mpz
    hq: mpz
    p_inverse: mpz

    def __repr__(self) -> str:
        return f"CrtDecryptionKey(<{int(self.p * self.q).bit_length()}-bit key, redacted>)"

    @classmethod
    def from_primes(cls, p: int, q: int) -> CrtDecryptionKey:
        """Derive the CRT constants from the two primes."""
        mp, mq = mpz(p), mpz(q)
        n = mp * mq
        return cls(p=mp, q=mq, psquare=mp * mp, qsquare=mq * mq,
                   hp=_h_constant(mp, n), hq=_h_constant(mq, n),
                   p_inverse=gmpy2.invert(mp, mq))

    @classmethod
    def from_private_key(cls, private_key: PaillierPrivateKey) -> CrtDecryptionKey:
        """Take the primes out of a ``phe`` private key."""
        return cls.from_primes(int(private_key.p), int(private_key.q))

    def decrypt(self, ciphertext: int) -> int:
        """Return the plaintext of one raw ciphertext (an element of ``Z*_{n**2}``)."""
        c = mpz(ciphertext)
        # reduce the 2k-bit ciphertext first: GMP's powmod is about 27 % slower on a base
        # twice the modulus' size
        mp = (gmpy2.powmod(c % self.psquare, self.p - 1, self.psquare) - 1) // self.p \
            * self.hp % self.p
        mq = (gmpy2.powmod(c % self.qsquare, self.q - 1, self.qsquare) - 1) // self.q \
            * self.hq % self.q
        u = (mq - mp) * self.p_inverse % self.q
        return int(mp + u * self.p)


def _h_constant(prime: mpz, n: mpz) -> mpz:
    square = prime * prime
    return gmpy2.invert((gmpy2.powmod(n + 1, prime - 1, square) - 1) // prime, prime)


@lru_cache(maxsize=4)
def _crt_key(p: int, q: int) -> CrtDecryptionKey:
    """The CRT constants of a key, derived once per process (two modular exponentiations)."""
    return CrtDecryptionKey.from_primes(p, q)


def _decrypt_chunk(p: int, q: int, chunk: list[int]) -> list[int]:
    """Worker entry point: plain ints in, plain ints out (cheap to pickle)."""
    key = _crt_key(p, q)
    return [key.decrypt(c) for c in chunk]


class _Memo:
    """``(n, ciphertext) -> plaintext`` for the last :data:`MEMO_SIZE` decryptions (LRU)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.known: OrderedDict[tuple[int, int], int] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> int | None:
        with self.lock:
            found = self.known.get(key)
            if found is not None:
                self.known.move_to_end(key)
            return found

    def put(self, key: tuple[int, int], plaintext: int) -> None:
        with self.lock:
            self.known[key] = plaintext
            self.known.move_to_end(key)
            while len(self.known) > self.size:
                self.known.popitem(last=False)


_MEMO = _Memo(MEMO_SIZE)


def _decrypt_memoised(cts: list[int], p: int, q: int, processes: int,
                      parallel_threshold: int) -> list[int]:
    """Decrypt the ciphertexts the memo does not know (once each), answer the rest from it."""
    n = p * q
    known: dict[int, int] = {}
    missing = []
    for c in dict.fromkeys(cts):
        m = _MEMO.get((n, c))
        if m is None:
            missing.append(c)
        else:
            known[c] = m
    if missing:
        for c, m in zip(missing, _decrypt(missing, p, q, processes, parallel_threshold),
                        strict=True):
            _MEMO.put((n, c), m)
            known[c] = m
    return [known[c] for c in cts]


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver avoids forking a parent that may run threads (gRPC in Flower apps).
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def decrypt_raw_many(ciphertexts: Sequence[int], private_key: PaillierPrivateKey, *,
                     processes: int = 2, parallel_threshold: int | None = None,
                     memo: bool = False) -> list[int]:
    """Decrypt raw ciphertexts, in a process pool when there are many.

    Parameters
    ----------
    ciphertexts : sequence of int
        Raw ciphertexts under ``private_key.public_key`` (validate them first).
    private_key : phe.paillier.PaillierPrivateKey
        The shared bank key; never available to the coordinator.
    processes : int
        Worker processes for large inputs; 1 keeps everything in-process.
    parallel_threshold : int, optional
        Inputs shorter than this are decrypted in-process; default
        :data:`PARALLEL_THRESHOLD`.
    memo : bool
        Answer ciphertexts this process decrypted before from memory and remember the new
        ones (for sums that several banks of one process, or one bank twice, open; see the
        module docstring). The plaintexts are the same either way.

    Returns
    -------
    list of int
        Plaintexts in ``[0, n)``, in input order.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if parallel_threshold is None:
        parallel_threshold = PARALLEL_THRESHOLD
    cts = [int(c) for c in ciphertexts]
    p, q = int(private_key.p), int(private_key.q)
    if memo:
        return _decrypt_memoised(cts, p, q, processes, parallel_threshold)
    return _decrypt(cts, p, q, processes, parallel_threshold)


def _decrypt(cts: list[int], p: int, q: int, processes: int,
             parallel_threshold: int) -> list[int]:
    if processes == 1 or len(cts) < max(parallel_threshold, 2):
        return _decrypt_chunk(p, q, cts)
    n_chunks = min(len(cts), processes * 4)
    size = -(-len(cts) // n_chunks)
    chunks = [cts[i:i + size] for i in range(0, len(cts), size)]
    with ProcessPoolExecutor(max_workers=processes, mp_context=_pool_context()) as pool:
        parts = pool.map(_decrypt_chunk, [p] * len(chunks), [q] * len(chunks), chunks)
        return [m for part in parts for m in part]
