"""One epoch of vertical LR at one party over a peer stream (``vertical-transport = "stream"``).

The same phases, in the same order and with the same bytes, as the message transport's
``V_ENCRYPT`` -> ``V_GRADIENT`` -> ``V_OPEN`` per batch (:mod:`federation.steps.vertical_party`),
but the peer's message of each phase arrives as a frame (:class:`FrameLink`) instead of inside
the coordinator's next Flower message, so an epoch costs the parties one Flower message each.
The last batch's own gradient, opened by the peer, is kept for the next epoch's first batch or
the final update, as the message transport keeps it at the coordinator.

Security: as :mod:`federation.steps.vertical_party`: what a party sends is encrypted under its
own key or masked; every received message goes through the same protocol checks (kind, key,
run, batch, slots) as on the message transport.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from federation.steps.vertical_party import (
    apply_update,
    encrypt_batch,
    masked_gradient,
    open_peer_gradient,
)
from federation.wire.peer_frames import STEP_ENCRYPT, STEP_GRADIENT, STEP_OPEN
from protocols.vertical_lr.steps import BatchSecrets, VerticalLRState, VerticalParty

__all__ = ["FrameLink", "PendingUpdate", "stream_epoch"]


class FrameLink(Protocol):
    """Where a party's phase messages go to and come from its peer (in order)."""

    def send(self, step: int, epoch: int, batch: int, payload: bytes) -> None: ...

    def receive(self, step: int, epoch: int, batch: int) -> bytes: ...


@dataclass(frozen=True)
class PendingUpdate:
    """The last batch's masks and own gradient as the peer opened it (not applied yet)."""

    secrets: BatchSecrets
    opened: bytes


def stream_epoch(role: str, party: VerticalParty, state: VerticalLRState, link: FrameLink, *,
                 epoch: int, pending: PendingUpdate | None = None,
                 computing: Callable[[], AbstractContextManager[object]] = nullcontext,
                 ) -> tuple[VerticalLRState, PendingUpdate]:
    """Run every batch of ``epoch``; return the weights before the last batch's update and
    that update (``computing`` wraps each local phase, e.g. to pause a precompute thread)."""
    for batch in range(party.config.n_batches):
        with computing():
            if pending is not None:
                state = apply_update(role, party, state, pending.secrets, pending.opened)
            blob, secrets = encrypt_batch(role, party, state, epoch=epoch, batch=batch)
        link.send(STEP_ENCRYPT, epoch, batch, blob)
        received = link.receive(STEP_ENCRYPT, epoch, batch)
        with computing():
            blob, secrets = masked_gradient(role, party, secrets, received)
        link.send(STEP_GRADIENT, epoch, batch, blob)
        received = link.receive(STEP_GRADIENT, epoch, batch)
        with computing():
            blob = open_peer_gradient(role, party, received, epoch=epoch, batch=batch)
        link.send(STEP_OPEN, epoch, batch, blob)
        pending = PendingUpdate(secrets, link.receive(STEP_OPEN, epoch, batch))
    if pending is None:
        raise ValueError("an epoch of no batches")  # VerticalLRConfig forbids it
    return state, pending
