"""Errors raised by the coordinator while it runs a federation."""

from __future__ import annotations

from enum import Enum

from protocols.errors import FedCreditError


class FederationError(FedCreditError):
    """A node failed a step, did not answer, or too few nodes joined."""


class RunKind(Enum):
    """Where the coordinator runs, which decides the command that continues a stopped run."""

    SIMULATION = "simulation"
    """In-process, ``fedcredit simulate`` (Flower's simulation engine)."""
    DEPLOYMENT = "deployment"
    """The ServerApp of a real SuperLink, started by ``flwr run`` (or the local launcher)."""


def resume_command(kind: RunKind, run_dir: str) -> str:
    """The command that continues the run whose checkpoint is in ``run_dir``.

    A deployed coordinator cannot know how it was started: it names both ways, the local
    launcher (whose ``--resume`` takes its own ``--out`` folder, not the coordinator's run
    folder) and the ``flwr run`` equivalent of ``docs/deployment.md``.
    """
    if kind is RunKind.SIMULATION:
        return f"fedcredit simulate --resume {run_dir}"
    return ("scripts/local_federation.py --resume OUT (the launch's --out folder), or "
            "flwr run <app> --run-config <this run's config> --run-config 'resume=true' "
            f"--stream once every bank node is active again (checkpoint in {run_dir})")


class RunInterrupted(FedCreditError):
    """The coordinator stopped after checkpointing a round (crash injection or shutdown)."""

    def __init__(self, rounds_done: int, run_dir: str,
                 kind: RunKind = RunKind.SIMULATION) -> None:
        self.rounds_done, self.run_dir, self.kind = rounds_done, run_dir, kind
        super().__init__(f"run stopped after round {rounds_done} (checkpoint written); "
                         f"continue it with: {resume_command(kind, run_dir)}")

    def deployed(self) -> RunInterrupted:
        """The same stop, its message naming the deployment's resume command (the workflow
        that raises it does not know how the coordinator was started; the ServerApp does)."""
        return RunInterrupted(self.rounds_done, self.run_dir, RunKind.DEPLOYMENT)
