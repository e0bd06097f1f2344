"""Encryption randomness of the vertical LR, drawn while a party waits for the relay.

Step (vertical LR phase 1, issue 14 part 6): per mini-batch each party encrypts one value per
row under its own key, ``c = (1 + m*n) * hs**a mod n**2`` (:mod:`protocols.paillier.fast`).
The randomizer ``hs**a`` does not depend on ``m``; it is about all of the encryption's cost
(85 % of an epoch), and ``m`` depends on the weights after the previous batch, so it cannot be
computed before the previous batch's last message. The randomizers can: a node keeps a pool
per own key and a background thread fills it whenever no step of this process is running
(while the coordinator relays the other party's work, three times per batch). The
encryption step then takes randomizers from the pool and draws the rest itself, so the model,
the messages and their distribution are unchanged.

What can and cannot be batched: batch ``t + 1``'s residuals need the weights after batch ``t``,
so no two batches share a message and each batch needs its three relayed exchanges
(encrypt -> masked gradient -> open); only the value-independent randomness moves off the
critical path.

Security: each randomizer is ``hs**a`` with a fresh exponent ``a`` from
:class:`random.SystemRandom` (or the process's injected source in tests), used for exactly one
ciphertext (popped from the pool), and held only in this node's memory next to its private
key; the same assumption as drawing it inline (full-length exponents; DCR).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from gmpy2 import mpz
from phe.paillier import PaillierPrivateKey

from protocols.paillier.fast import RandomizerTable, RandomSource, key_holder_table_for

__all__ = ["PooledTable", "pooled_table", "step_running", "PRECOMPUTE_CHUNK"]

PRECOMPUTE_CHUNK = 8
"""Randomizers drawn between two looks at whether a step has started (about 8 ms)."""


@dataclass(frozen=True, slots=True, eq=False)
class PooledTable(RandomizerTable):
    """The key holder's table, whose :meth:`randomizer` first takes a precomputed value."""

    pool: deque[mpz] = field(default_factory=deque, repr=False)
    target: list[int] = field(default_factory=lambda: [0], repr=False)
    """How many randomizers the background thread keeps ready (a mutable cell)."""

    def randomizer(self, rng: RandomSource) -> mpz:
        """A precomputed ``hs**a`` (used once), else a fresh one from ``rng``."""
        try:
            return self.pool.popleft()
        except IndexError:
            return RandomizerTable.randomizer(self, rng)


class _Precomputer:
    """One process's pools (per own key) and the thread that fills them while idle."""

    def __init__(self) -> None:
        self.tables: dict[int, PooledTable] = {}
        self.lock = threading.Condition()
        self.running_steps = 0
        self.uses = 0
        self.thread: threading.Thread | None = None
        self.rng: RandomSource = random.SystemRandom()

    def table(self, private_key: PaillierPrivateKey, target: int) -> PooledTable:
        with self.lock:
            n = int(private_key.public_key.n)
            table = self.tables.get(n)
            if table is None:
                base = key_holder_table_for(private_key)
                table = PooledTable(base.n, base.nsquare, base.exponent_bits, base.short_exponent,
                                    base.rows, base.crt)
                self.tables = {n: table, **{k: v for k, v in self.tables.items() if k != n}}
                while len(self.tables) > 2:  # both parties' keys at most (simulation)
                    self.tables.pop(next(reversed(self.tables)))
            table.target[0] = max(table.target[0], target)
            self.uses += 1
            if self.thread is None and self.uses > 1:  # a process that outlives one step
                self.thread = threading.Thread(target=self._fill, name="vertical-precompute",
                                               daemon=True)
                self.thread.start()
            self.lock.notify_all()
            return table

    def _wanting(self) -> PooledTable | None:
        return next((t for t in self.tables.values() if len(t.pool) < t.target[0]), None)

    def _fill(self) -> None:
        while True:
            with self.lock:
                table = self._wanting()
                while self.running_steps or table is None:
                    self.lock.wait()
                    table = self._wanting()
            for _ in range(PRECOMPUTE_CHUNK):
                table.pool.append(RandomizerTable.randomizer(table, self.rng))

    @contextmanager
    def step(self) -> Iterator[None]:
        with self.lock:
            self.running_steps += 1
        try:
            yield
        finally:
            with self.lock:
                self.running_steps -= 1
                self.lock.notify_all()


_PRECOMPUTER = _Precomputer()


def pooled_table(private_key: PaillierPrivateKey, *, rows: int) -> PooledTable:
    """This process's pooled table for ``private_key``, kept filled to ``rows`` randomizers
    (one batch) by the background thread while no step runs (full-length exponents only).

    The thread starts at the second call in a process: a deployed node's ClientApp process
    (one per message in Flower 1.42) would exit before using what it drew."""
    return _PRECOMPUTER.table(private_key, rows)


@contextmanager
def step_running() -> Iterator[None]:
    """Pause the background thread while a step of this process runs (it holds the GIL)."""
    with _PRECOMPUTER.step():
        yield
