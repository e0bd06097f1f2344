"""A stopped run names the command that continues it, for the kind of run it was: a simulation
``fedcredit simulate --resume``, a deployed coordinator the local launcher's ``--resume`` and
the ``flwr run ... resume=true`` equivalent (never the simulation's command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, RecordDict

import server.app as server_app
from federation.run.config import RunConfig
from server.errors import RunInterrupted, RunKind, resume_command


def test_a_simulation_is_continued_with_fedcredit_simulate() -> None:
    stopped = RunInterrupted(3, "runs/a")
    assert stopped.kind is RunKind.SIMULATION and stopped.rounds_done == 3
    assert str(stopped).endswith("continue it with: fedcredit simulate --resume runs/a")


def test_a_deployment_is_continued_with_the_launcher_or_flwr_run() -> None:
    text = str(RunInterrupted(3, "/srv/coordinator/run").deployed())
    assert "run stopped after round 3" in text and "fedcredit simulate" not in text
    assert "scripts/local_federation.py --resume OUT" in text
    assert "--run-config 'resume=true' --stream" in text and "/srv/coordinator/run" in text
    assert "\n" not in text
    assert resume_command(RunKind.DEPLOYMENT, "/srv/coordinator/run") in text


def _halted(grid: Any, cfg: RunConfig, **_: Any) -> None:
    raise RunInterrupted(2, cfg.out)


@pytest.mark.parametrize("in_process", [True, False])
def test_the_server_app_names_the_resume_command_of_its_run_kind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_process: bool,
) -> None:
    """The workflow raises the simulation's message; the deployed ServerApp (settings from
    Flower's run config) turns it into the deployment's, the CLI's in-process one keeps it."""
    monkeypatch.setattr(server_app, "run_horizontal", _halted)
    cfg = RunConfig(banks=3, rounds=4, halt_after=2, out=str(tmp_path))
    app = server_app.make_server_app(cfg if in_process else None)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(),
                      run_config=cfg.to_user_config())
    with pytest.raises(RunInterrupted) as info:
        app(None, context)  # type: ignore[arg-type]  # the stand-in workflow needs no grid
    expected = RunKind.SIMULATION if in_process else RunKind.DEPLOYMENT
    assert info.value.kind is expected
    assert ("fedcredit simulate --resume" in str(info.value)) is in_process
