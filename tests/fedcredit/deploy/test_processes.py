"""The process supervisor stops whole trees, including helpers that left the process group."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.processes import (
    ProcessRecord,
    ProcessSupervisor,
    is_running,
    load_records,
    start_ticks,
)

# A parent that starts a grandchild in a *new session* (as Flower does for SuperExec) and
# ignores SIGTERM, so only the supervisor's SIGKILL fallback can end it.
STUBBORN_TREE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print("ready", flush=True)
time.sleep(120)
"""


def _wait_for(log: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {log}")


def test_stop_all_ends_a_tree_that_ignores_sigterm(tmp_path: Path) -> None:
    record = tmp_path / "processes.json"
    with ProcessSupervisor(record) as sup:
        sup.start("tree", [sys.executable, "-c", STUBBORN_TREE], env=dict(os.environ),
                  log=tmp_path / "tree.log")
        _wait_for(tmp_path / "tree.log", "ready")
        sup.refresh()
        assert len(sup.seen) == 2
        started = time.monotonic()
        sup.stop_all(grace=1.0)  # SIGTERM is ignored: SIGKILL after the grace period
        assert time.monotonic() - started < 6
    records = load_records(record)
    assert {r.name for r in records} == {"tree", "tree/child"}
    assert not [r for r in records if is_running(r)]


def test_an_exited_unreaped_process_and_a_reused_pid_do_not_count(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    record = ProcessRecord("short", proc.pid, start_ticks(proc.pid))
    deadline = time.monotonic() + 10
    while is_running(record) and time.monotonic() < deadline:  # a zombie until waited for
        time.sleep(0.05)
    assert not is_running(record)
    proc.wait()
    me = ProcessRecord("me", os.getpid(), start_ticks(os.getpid()))
    assert is_running(me)
    if me.start_ticks:  # Linux: another start time means another process
        assert not is_running(ProcessRecord("me", os.getpid(), me.start_ticks + 1))


def test_names_are_unique_and_bad_commands_fail_clearly(tmp_path: Path) -> None:
    with ProcessSupervisor() as sup:
        sup.start("a", [sys.executable, "-c", "pass"], env=dict(os.environ), log=tmp_path / "a")
        with pytest.raises(DeploymentError, match="already"):
            sup.start("a", [sys.executable, "-c", "pass"], env=dict(os.environ),
                      log=tmp_path / "a")
        with pytest.raises(DeploymentError, match="cannot start b"):
            sup.start("b", [str(tmp_path / "no-such-program")], env=dict(os.environ),
                      log=tmp_path / "b")


LAUNCHER_THAT_DIES = """
import os, sys, time
from pathlib import Path
from fedcredit.deploy.processes import ProcessSupervisor
sup = ProcessSupervisor(Path(sys.argv[1]))
sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"],
          env=dict(os.environ), log=Path(sys.argv[1]).with_suffix(".log"))
print("started", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_children_die_with_a_killed_launcher(tmp_path: Path) -> None:
    record = tmp_path / "processes.json"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER_THAT_DIES, str(record)],
                                stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[3])
    assert launcher.stdout is not None and launcher.stdout.readline().strip() == "started"
    sleeper = load_records(record)[0]
    assert sleeper.name == "sleeper" and is_running(sleeper)
    launcher.kill()  # SIGKILL: no finally block, no handler runs
    launcher.wait()
    deadline = time.monotonic() + 10
    while is_running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(sleeper)


FAILED_RUN_LOG = """\
Successfully started run 42
\x1b[92mINFO \x1b[0m:      Starting logstream for run_id `42`
2026-12-07T07:53:08.765Z INFO [uvicorn.error] Finished server process [19150]
Traceback (most recent call last):
  File "/srv/link/apps/fedcredit/server/horizontal.py", line 305, in one_round
    self.on_checkpoint(st, head)
server.checkpoint.CheckpointError: cannot write run/checkpoint.json: No space left on device.
\x1b[91mERROR \x1b[0m:     Exit Code: 201
"""

BOXED_LOG = """\
Successfully installed fedcredit.
\u256d\u2500 Error \u2500\u2500\u2500\u2500\u256e
\u2502 Connection to the SuperLink is unavailable. Please check   \u2502
\u2502 your network connection.                                    \u2502
\u2570\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u256f
"""


@pytest.mark.parametrize("log, cause", [
    (FAILED_RUN_LOG, "last error: server.checkpoint.CheckpointError: cannot write "
                     "run/checkpoint.json: No space left on device.; "),
    (BOXED_LOG, "last error: Error: Connection to the SuperLink is unavailable. Please check "
                "your network connection.; "),
    ("all fine\n", ""),
])
def test_a_failure_note_is_one_line_with_the_cause_and_the_log(tmp_path: Path, log: str,
                                                                cause: str) -> None:
    sup = ProcessSupervisor()
    sup.logs["flwr-run"] = tmp_path / "flwr-run.log"
    sup.logs["flwr-run"].write_text(log, encoding="utf-8")
    assert sup.failure_note("flwr-run") == f"{cause}log: {tmp_path / 'flwr-run.log'}"
    assert sup.failure_note("never-started") == "no log"
