"""Both parties of the vertical logistic regression in one process (tests, benchmarks).

:func:`train_vertical_lr_local` calls exactly the steps of :mod:`protocols.vertical_lr.steps`
in the order a deployment must, and passes every message through its bytes
(``*_to_bytes`` then :func:`~protocols.vertical_lr.messages.parse_vertical_message`; the
receiving step validates it), as the coordinator would relay it. Per batch::

    phase 1  bank: bank_residual_step            center: center_partial_step
    phase 2  bank: bank_gradient_step            center: center_gradient_step
    phase 3  bank: bank_open_center_gradient     center: center_open_bank_gradient
    phase 4  bank: bank_update_step              center: center_update_step

Within a phase the two parties are independent, so with one core each the critical path
of a batch is ``sum over phases of max(bank time, center time)``; the driver measures each
party's time per phase and reports both that and the one-process wall time.

Security: both parties' secrets live in one process here, so this driver is for testing
and measuring only; a deployment runs each party's steps at that party.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.paillier.fast import RandomSource, randomizer_table_for
from protocols.paillier.keys import generate_paillier_keypair
from protocols.vertical_lr.messages import (
    MaskedGradientValues,
    Message,
    VerticalCiphertexts,
    masked_values_to_bytes,
    parse_vertical_message,
    vertical_ciphertexts_to_bytes,
)
from protocols.vertical_lr.steps import (
    BatchSecrets,
    VerticalLRConfig,
    VerticalLRState,
    VerticalParty,
    bank_gradient_step,
    bank_open_center_gradient,
    bank_residual_step,
    bank_update_step,
    center_gradient_step,
    center_open_bank_gradient,
    center_partial_step,
    center_update_step,
    initial_state,
    make_bank_party,
    make_center_party,
)

__all__ = ["VerticalLRResult", "train_vertical_lr_local", "PHASES"]

KeyPair = tuple[PaillierPublicKey, PaillierPrivateKey]
PHASES = ("encrypt", "gradient", "open", "update")

_T = TypeVar("_T")
_M = TypeVar("_M", VerticalCiphertexts, MaskedGradientValues)


class _EncryptStep(Protocol):
    """``bank_residual_step`` / ``center_partial_step``."""

    def __call__(self, party: VerticalParty, state: VerticalLRState, /, *, epoch: int, batch: int,
                 rng: RandomSource | None = None) -> tuple[VerticalCiphertexts, BatchSecrets]: ...


class _GradientStep(Protocol):
    """``bank_gradient_step`` / ``center_gradient_step``."""

    def __call__(self, party: VerticalParty, secrets: BatchSecrets, received: VerticalCiphertexts,
                 /, *, rng: RandomSource | None = None,
                 ) -> tuple[VerticalCiphertexts, BatchSecrets]: ...


class _OpenStep(Protocol):
    """``bank_open_center_gradient`` / ``center_open_bank_gradient``."""

    def __call__(self, party: VerticalParty, masked: VerticalCiphertexts, /, *, epoch: int,
                 batch: int) -> MaskedGradientValues: ...


@dataclass(frozen=True, slots=True, eq=False)
class VerticalLRResult:
    """Weights of both parties and where the time went.

    Attributes
    ----------
    bank_weights : numpy.ndarray
        ``[intercept, w_B...]``.
    center_weights : numpy.ndarray
        ``w_C``.
    config : VerticalLRConfig
        The settings the run used.
    party_seconds : dict
        ``{"bank" | "center": {phase: seconds}}`` over all epochs, wall clock
        (serialisation included at the sender, parsing at the receiver).
    party_cpu_seconds : dict
        The same in CPU seconds of this process (robust against other load on the box).
    epochs : tuple of dict
        Per epoch: ``bank``, ``center`` (busy seconds), ``critical_path``, their CPU-time
        versions ``bank_cpu``, ``center_cpu``, ``critical_path_cpu``, and ``wall``.
    message_bytes : dict
        Serialised bytes per message kind over the run.
    setup_seconds : float
        Key generation (if any) and randomizer tables, once per run.
    """

    bank_weights: np.ndarray
    center_weights: np.ndarray
    config: VerticalLRConfig
    party_seconds: dict[str, dict[str, float]]
    party_cpu_seconds: dict[str, dict[str, float]]
    epochs: tuple[dict[str, float], ...]
    message_bytes: dict[str, int]
    setup_seconds: float = 0.0


class _Ledger:
    """Per-party, per-phase seconds (wall and CPU clocks) and bytes per message kind."""

    def __init__(self, clocks: dict[str, Callable[[], float]]) -> None:
        self.clocks = clocks
        self.seconds: dict[str, dict[str, defaultdict[str, float]]] = {
            name: {"bank": defaultdict(float), "center": defaultdict(float)} for name in clocks}
        self.critical = dict.fromkeys(clocks, 0.0)
        self.bytes: dict[str, int] = defaultdict(int)

    def phase(self, name: str, bank: Callable[[], _T], center: Callable[[], _T]) -> tuple[_T, _T]:
        results: list[_T] = []
        spent: dict[str, list[float]] = {clock: [] for clock in self.clocks}
        for role, work in (("bank", bank), ("center", center)):
            start = {clock: read() for clock, read in self.clocks.items()}
            results.append(work())
            for clock, read in self.clocks.items():
                spent[clock].append(read() - start[clock])
                self.seconds[clock][role][name] += spent[clock][-1]
        for clock, times in spent.items():
            self.critical[clock] += max(times)
        return results[0], results[1]

    def totals(self) -> dict[str, float]:
        """Busy seconds per party and critical path so far, for each clock."""
        out: dict[str, float] = {}
        for clock, suffix in zip(self.clocks, ("", "_cpu"), strict=True):
            for role in ("bank", "center"):
                out[role + suffix] = sum(self.seconds[clock][role].values())
            out["critical_path" + suffix] = self.critical[clock]
        return out

    def wire(self, kind: str, data: bytes) -> bytes:
        self.bytes[kind] += len(data)
        return data


def _run_batch(bank: VerticalParty, center: VerticalParty, states: list[VerticalLRState],
               epoch: int, batch: int, rng: RandomSource | None, ledger: _Ledger) -> None:
    def send(msg: Message) -> bytes:
        if isinstance(msg, VerticalCiphertexts):
            return ledger.wire(msg.kind, vertical_ciphertexts_to_bytes(msg))
        return ledger.wire(msg.kind, masked_values_to_bytes(msg))

    def encrypt(step: _EncryptStep, party: VerticalParty,
                state: VerticalLRState) -> tuple[bytes, BatchSecrets]:
        msg, secrets = step(party, state, epoch=epoch, batch=batch, rng=rng)
        return send(msg), secrets

    def gradient(step: _GradientStep, party: VerticalParty, secrets: BatchSecrets,
                 wire: bytes) -> tuple[bytes, BatchSecrets]:
        msg, secrets = step(party, secrets, _received(wire, VerticalCiphertexts), rng=rng)
        return send(msg), secrets

    def open_(step: _OpenStep, party: VerticalParty, wire: bytes) -> bytes:
        return send(step(party, _received(wire, VerticalCiphertexts), epoch=epoch, batch=batch))

    (wire_b, sec_b), (wire_c, sec_c) = ledger.phase(
        "encrypt", lambda: encrypt(bank_residual_step, bank, states[0]),
        lambda: encrypt(center_partial_step, center, states[1]))
    (grad_b, sec_b), (grad_c, sec_c) = ledger.phase(
        "gradient", lambda: gradient(bank_gradient_step, bank, sec_b, wire_c),
        lambda: gradient(center_gradient_step, center, sec_c, wire_b))
    open_c, open_b = ledger.phase(
        "open", lambda: open_(bank_open_center_gradient, bank, grad_c),
        lambda: open_(center_open_bank_gradient, center, grad_b))
    states[:] = ledger.phase(
        "update", lambda: bank_update_step(bank, states[0], sec_b,
                                           _received(open_b, MaskedGradientValues)),
        lambda: center_update_step(center, states[1], sec_c,
                                   _received(open_c, MaskedGradientValues)))


def _received(wire: bytes, kind: type[_M]) -> _M:
    """Parse relayed bytes as the message class the next step takes; that step checks the rest.

    Raises
    ------
    MalformedMessageError
        Not a well-formed vertical message.
    TypeError
        Another class of message (the same error the step's validator raises).
    """
    msg = parse_vertical_message(wire)
    if not isinstance(msg, kind):
        raise TypeError(f"expected a {kind.__name__} message")
    return msg


def _key_pairs(key_bits: int, keys: tuple[KeyPair, KeyPair] | None) -> tuple[KeyPair, KeyPair]:
    if keys is not None:
        return keys
    insecure = key_bits < 2048
    return (generate_paillier_keypair(key_bits, allow_insecure_test_key=insecure),
            generate_paillier_keypair(key_bits, allow_insecure_test_key=insecure))


def train_vertical_lr_local(x_bank: np.ndarray, y: np.ndarray, x_center: np.ndarray, *,
                            epochs: int, batch_size: int, learning_rate: float,
                            l2: float = 0.0, key_bits: int = 2048, seed: int = 0,
                            keys: tuple[KeyPair, KeyPair] | None = None,
                            short_exponent: bool = False, rng: RandomSource | None = None,
                            run_id: str = "vertical-local",
                            clock: Callable[[], float] = time.perf_counter,
                            cpu_clock: Callable[[], float] = time.process_time,
                            ) -> VerticalLRResult:
    """Train the two-key vertical LR with both parties in this process.

    Parameters
    ----------
    x_bank, x_center : numpy.ndarray
        Standardised, aligned feature matrices (rows x features).
    y : numpy.ndarray
        Bank labels, 0 or 1.
    epochs, batch_size, learning_rate, l2 :
        Training settings (see :class:`~protocols.vertical_lr.steps.VerticalLRConfig`).
    key_bits : int
        Size of the two generated key pairs; below 2048 only for tests.
    seed : int
        Public seed of the batch schedule.
    keys : ((PK_B, SK_B), (PK_C, SK_C)), optional
        Existing key pairs (then ``key_bits`` is ignored).
    short_exponent : bool
        Opt into short encryption exponents (extra assumption, see ``paillier_fast``).
    rng : RandomSource, optional
        Encryption exponents and masks; system randomness by default (seed only in tests).
    clock, cpu_clock : callable
        Wall clock and CPU-time clock for the timings.

    Returns
    -------
    VerticalLRResult
    """
    start = clock()
    (pk_b, sk_b), (pk_c, sk_c) = _key_pairs(key_bits, keys)
    for public_key in (pk_b, pk_c):
        randomizer_table_for(public_key, short_exponent=short_exponent)
    config = VerticalLRConfig(run_id, len(y), x_bank.shape[1], x_center.shape[1], batch_size,
                              learning_rate, l2, seed)
    bank = make_bank_party(x_bank, y, config=config, private_key=sk_b, peer_public_key=pk_c,
                           short_exponent=short_exponent)
    center = make_center_party(x_center, config=config, private_key=sk_c, peer_public_key=pk_b,
                               short_exponent=short_exponent)
    setup = clock() - start
    ledger = _Ledger({"wall": clock, "cpu": cpu_clock})
    states = [initial_state(bank), initial_state(center)]
    per_epoch = []
    for epoch in range(epochs):
        before, wall = ledger.totals(), clock()
        for batch in range(config.n_batches):
            _run_batch(bank, center, states, epoch, batch, rng, ledger)
        per_epoch.append({key: value - before[key] for key, value in ledger.totals().items()}
                         | {"wall": clock() - wall})
    seconds = {clock_name: {role: dict(v) for role, v in by_role.items()}
               for clock_name, by_role in ledger.seconds.items()}
    return VerticalLRResult(np.array(states[0].weights), np.array(states[1].weights), config,
                            seconds["wall"], seconds["cpu"], tuple(per_epoch),
                            dict(ledger.bytes), setup)
