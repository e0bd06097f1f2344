"""The coordinator ServerApp (``flwr run .`` uses ``app``; the CLI builds its own with
:func:`make_server_app` to receive the result in-process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from federation.run.config import RunConfig, run_mode
from federation.run.folder import RunFolder
from federation.run.identity import run_identity, utc_now
from federation.run.vertical_config import VerticalConfig, vertical_config_from_run_config
from server.checkpoint import open_run_folder, save_checkpoint
from server.errors import RunInterrupted
from server.grid_pacing import install as pace_grid
from server.horizontal import Observer, run_horizontal
from server.results import write_federated_only
from server.run_state import FederatedResult, RoundRecord
from server.trees import run_trees
from server.vertical import VerticalRun, result_payload


def make_server_app(
    cfg: RunConfig | None = None,
    *,
    sink: dict[str, FederatedResult] | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    observer: Observer | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ServerApp:
    """A ServerApp running the horizontal workflow with a checkpoint after every round (every
    tree for ``model = "gbdt"``).

    With ``mode = "vertical"`` in Flower's run config (and ``cfg`` None) it runs the vertical
    workflow instead (:func:`run_vertical_deployed`).

    With ``cfg`` None the settings come from Flower's run config (``pyproject.toml`` or
    ``flwr run --run-config``). With ``resume`` in the settings the checkpoint in ``out`` is
    continued (its audit log reconciled with it); otherwise a previous run's checkpoint and
    audit log there are removed; either way the folder is checked writable with room first.
    ``on_round`` gets each evaluation, ``on_progress`` the rounds (trees) done after each.
    With ``sink`` the result is handed back in-process; otherwise it is written to ``out``.
    A run stopped by ``halt-after`` raises :class:`~server.errors.RunInterrupted` naming the
    command that continues it: ``fedcredit simulate --resume`` when ``cfg`` is given (the
    CLI's in-process run), the deployment's (local launcher or ``flwr run``) otherwise.
    """
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        started = utc_now()  # the run identity's start (results.json ``identity``)
        pace_grid()  # deployed: reply objects retried after 20 ms, not Flower's 1 s
        if cfg is None and run_mode(context.run_config) == "vertical":
            run_vertical_deployed(grid, vertical_config_from_run_config(context.run_config))
            return
        run_cfg = cfg or RunConfig.from_user_config(dict(context.run_config))
        out = Path(run_cfg.out)
        state = open_run_folder(out, run_cfg)  # room, stale files, audit reconciled
        workflow = run_trees if run_cfg.model == "gbdt" else run_horizontal
        try:
            result = workflow(
                grid, run_cfg, state=state, on_round=on_round, observer=observer,
                on_progress=on_progress,
                on_checkpoint=lambda st, head: save_checkpoint(out, run_cfg, st, head))
        except RunInterrupted as exc:
            if cfg is not None:  # in-process (fedcredit simulate): its own resume command
                raise
            raise exc.deployed() from None
        if sink is not None:
            sink["result"] = result
        else:
            write_federated_only(run_cfg, result, started=started)

    return server


def run_vertical_deployed(grid: Grid, cfg: VerticalConfig) -> Path:
    """Run the vertical workflow; write ``results.json`` into ``cfg.out``; return its path.

    The centralised and bank-only baselines need both files and are left to whoever holds
    them (the local launcher adds them; see ``docs/deployment.md``).
    """
    started, started_utc = time.perf_counter(), utc_now()
    result = VerticalRun(grid, cfg).run()
    results = replace(result_payload(cfg, result), wall_seconds=time.perf_counter() - started,
                      identity=run_identity(run_id=result.run_id, started=started_utc))
    return results.write(RunFolder(Path(cfg.out)).results)


app = make_server_app()
