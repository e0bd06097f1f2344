"""The launcher's side of faults, without starting a process: the options a launch records for
``--resume``, the resume command, its refusals, the run config it sends (min-banks,
round-timeout, resume), the one-line checks of its output folder, the one line a failed run
ends with, and a resume that goes on without a bank that is down."""

from __future__ import annotations

import importlib.util
import json
import signal
from pathlib import Path

import pytest

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.launch_plan import (
    LaunchOptions,
    Layout,
    check_out_folder,
    check_writable,
    load_launch,
    resume_hint,
    run_config_values,
    save_launch,
)
from fedcredit.deploy.local_federation import JOINED, LocalFederation
from federation.run.config import RunConfig, default_min_banks

from .conftest import LAUNCHER


def options(out: Path, **changes: object) -> LaunchOptions:
    base: dict = {"banks": 4, "out": out, "data_path": "german", "target": "bad",
                  "rounds": 4, "extra": {"min-banks": 3, "round-timeout": 120.0}}
    return LaunchOptions(**{**base, **changes})


def test_a_launch_is_resumed_with_its_own_options(tmp_path: Path) -> None:
    out = tmp_path / "run"
    layout = Layout(out.resolve())
    out.mkdir()
    first = options(out, certs=None, seed=7)
    save_launch(first, layout)
    with pytest.raises(DeploymentError, match="wrote no checkpoint"):
        load_launch(out)
    layout.checkpoint.parent.mkdir(parents=True)
    layout.checkpoint.write_text("{}")
    resumed = load_launch(out, timeout=99.0)
    assert resumed.resume and resumed.timeout == 99.0 and resumed.seed == 7
    assert (resumed.banks, resumed.rounds, dict(resumed.extra)) == (4, 4, dict(first.extra))
    cfg = resumed.run_config(layout)
    assert cfg.resume and cfg.min_banks == 3 and cfg.round_timeout == 120.0
    sent = run_config_values(cfg, resumed)
    assert sent["resume"] is True and sent["min-banks"] == 3 and sent["round-timeout"] == 120.0
    assert "resume" not in run_config_values(first.run_config(layout), first)
    assert resume_hint(out).endswith(f"scripts/local_federation.py --resume {out.resolve()}")
    with pytest.raises(DeploymentError, match=f"continue its run with --resume {out.resolve()}"):
        check_out_folder(out)


def test_resume_refuses_a_folder_without_a_launch(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="no launch.json there"):
        load_launch(tmp_path)
    (tmp_path / "launch.json").write_text(json.dumps({"v": 99}))
    Layout(tmp_path).checkpoint.parent.mkdir(parents=True)
    Layout(tmp_path).checkpoint.write_text("{}")
    with pytest.raises(DeploymentError, match="damaged"):
        load_launch(tmp_path)


def test_an_unwritable_or_full_out_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DeploymentError, match="is not writable") as info:
        check_writable(blocker / "run")
    assert "\n" not in str(info.value)
    with pytest.raises(DeploymentError, match="MiB free"):
        check_writable(tmp_path / "run", need_bytes=2**62)


@pytest.mark.parametrize("banks, required", [(2, 2), (3, 3), (4, 3), (5, 4), (6, 4), (9, 6),
                                             (10, 7)])
def test_min_banks_zero_tolerates_a_third_dropping_out(banks: int, required: int) -> None:
    assert default_min_banks(banks) == required
    assert RunConfig(banks=banks).required_banks == required
    assert RunConfig(banks=banks, min_banks=banks).required_banks == banks


def test_the_script_wants_out_or_resume(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("local_federation_script", LAUNCHER)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path / "a"), "--resume", str(tmp_path)]) == 2
    assert "give --out for a new launch, or --resume" in capsys.readouterr().err
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:  # main() routes these signals to its cleanup; give pytest its own back
        assert script.main(["--resume", str(tmp_path)]) == 2
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    err = capsys.readouterr().err
    assert "no launch.json there" in err and "Traceback" not in err


def _resuming(out: Path, monkeypatch: pytest.MonkeyPatch, joined: int, exited: int,
              said: list[str]) -> LocalFederation:
    """A resumed launch of 4 banks (min-banks 3) whose first ``joined`` bank logs show their
    node active again and whose last ``exited`` bank processes exited."""
    fed = LocalFederation(options(out), say=said.append)
    for k, bank in enumerate(fed.banks):
        fed.sup.logs[bank.name] = out / f"{bank.name}.log"
        fed.sup.logs[bank.name].parent.mkdir(parents=True, exist_ok=True)
        fed.sup.logs[bank.name].write_text(f"{JOINED} 123\n" if k < joined else "retrying\n")
        if k >= fed.opt.banks - exited:
            fed.exited_banks[bank.name] = -9
    monkeypatch.setattr(fed, "_note_exits", lambda: None)  # no processes in this test
    return fed


def test_a_resume_goes_on_without_a_bank_that_is_down(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    _resuming(tmp_path / "a", monkeypatch, joined=3, exited=1, said=said).wait_for_nodes()
    assert "3 of 4 bank nodes are active again; the run goes on without bank-3" in said[-1]
    _resuming(tmp_path / "b", monkeypatch, joined=4, exited=0, said=said).wait_for_nodes()
    assert said[-1].endswith("every bank node is active again")
    with pytest.raises(DeploymentError, match="only 2 of 4 bank nodes are active again, "
                                              "min-banks = 3 needed"):
        _resuming(tmp_path / "c", monkeypatch, joined=2, exited=2, said=said).wait_for_nodes()


def test_a_failed_run_is_one_line_naming_the_coordinator_log(tmp_path: Path) -> None:
    fed = LocalFederation(options(tmp_path / "run"), say=lambda _: None)
    log = tmp_path / "flwr-run.log"
    log.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                   "server.errors.FederationError: step 'train': only 2 of 4 banks usable\n")
    fed.sup.logs["flwr-run"] = log
    line = fed.failed_run(7, {"status": "finished:failed", "status-details":
                              "ServerApp failed with exception: step 'train': only 2 of 4 "
                              "banks usable"})
    assert line == ("run 7 ended as finished:failed (ServerApp failed with exception: step "
                    f"'train': only 2 of 4 banks usable); coordinator log: {log}")
    bare = fed.failed_run(7, {"status": "finished:failed"})  # no details: the log's cause
    assert bare == ("run 7 ended as finished:failed; last error: server.errors.FederationError: "
                    f"step 'train': only 2 of 4 banks usable; log: {log}")
