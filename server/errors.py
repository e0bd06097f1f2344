"""Errors raised by the coordinator while it runs a federation."""

from __future__ import annotations

from protocols.errors import FedCreditError


class FederationError(FedCreditError):
    """A node failed a step, did not answer, or too few nodes joined."""


class RunInterrupted(FedCreditError):
    """The coordinator stopped after checkpointing a round (crash injection or shutdown)."""

    def __init__(self, rounds_done: int, run_dir: str) -> None:
        self.rounds_done = rounds_done
        super().__init__(f"run stopped after round {rounds_done} (checkpoint written); "
                         f"continue it with: fedcredit simulate --resume {run_dir}")
