"""A bank restarted after a crash rejoins: while the SuperLink still holds the session of its
killed predecessor (Flower 1.42 refuses the activation, exit 305), ``fedcredit node`` starts
the SuperNode again, for at most ``[coordinator] rejoin-wait`` seconds; any other failure, or
a stop asked for by a signal, is passed on at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fedcredit.deploy.node_runner import (
    ACTIVATION_REFUSED,
    CONNECTION_ERROR_EXIT,
    NodeLaunch,
    run_node,
)
from federation.run.node_config import NodeConfig

CONFIG = NodeConfig(source=Path("node.toml"), role="bank", name="bank-0", bank_index=0,
                    data_path=Path("bank.csv"), id_col="ID", target="bad",
                    root_certificates=None, auth_private_key=None, paillier_dir=None,
                    coordinator="127.0.0.1:9093", insecure=True, rejoin_wait_s=30.0)


def fake_node(tmp_path: Path, body: str) -> NodeLaunch:
    """A stand-in SuperNode: a Python script (``STATE`` counts its starts)."""
    script = tmp_path / "fake_supernode.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "STATE": str(tmp_path / "starts")}
    return NodeLaunch(CONFIG, [sys.executable, str(script)], env)


REFUSED_TWICE = f"""
    import os, sys
    path = os.environ["STATE"]
    starts = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(starts))
    if starts <= 2:
        print("[code: 2004] {ACTIVATION_REFUSED}.")
        sys.exit({CONNECTION_ERROR_EXIT})
    print("joined")
"""


def test_a_refused_activation_is_retried_until_the_old_session_is_gone(tmp_path: Path) -> None:
    waits: list[float] = []
    status = run_node(fake_node(tmp_path, REFUSED_TWICE), retry_s=0.5, sleep=waits.append)
    assert status == 0 and (tmp_path / "starts").read_text() == "3" and waits == [0.5, 0.5]


def test_a_helper_holding_the_output_open_does_not_stall_the_retry(tmp_path: Path) -> None:
    body = f"""
        import os, subprocess, sys
        path = os.environ["STATE"]
        starts = int(open(path).read()) + 1 if os.path.exists(path) else 1
        open(path, "w").write(str(starts))
        if starts == 1:  # like Flower's SuperExec: a child that outlives a failed SuperNode
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            print("[code: 2004] {ACTIVATION_REFUSED}.", flush=True)
            sys.exit({CONNECTION_ERROR_EXIT})
        print("joined")
    """
    started = time.monotonic()
    status = run_node(fake_node(tmp_path, body), retry_s=0.1, sleep=time.sleep)
    assert status == 0 and (tmp_path / "starts").read_text() == "2"
    assert time.monotonic() - started < 60


def test_retries_stop_after_rejoin_wait(tmp_path: Path) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    launch = replace(fake_node(tmp_path, REFUSED_TWICE), config=replace(CONFIG,
                                                                        rejoin_wait_s=5.0))
    status = run_node(launch, retry_s=10.0, sleep=sleep, clock=lambda: now[0])
    assert status == CONNECTION_ERROR_EXIT and (tmp_path / "starts").read_text() == "2"


@pytest.mark.parametrize("body, expected", [
    (f"import sys; print('[code: 401] key not registered'); sys.exit({CONNECTION_ERROR_EXIT})",
     CONNECTION_ERROR_EXIT),
    (f"import sys; print('{ACTIVATION_REFUSED}'); sys.exit(0)", 0),
])
def test_other_ends_are_not_retried(tmp_path: Path, body: str, expected: int) -> None:
    waits: list[float] = []
    assert run_node(fake_node(tmp_path, body), sleep=waits.append) == expected
    assert waits == []


def test_a_signal_reaches_the_supernode_and_ends_the_runner(tmp_path: Path) -> None:
    body = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (print("deactivated", flush=True), sys.exit(0)))
        print("running", flush=True)
        time.sleep(60)
    """
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from tests.fedcredit.deploy.test_node_rejoin import fake_node
        from fedcredit.deploy.node_runner import run_once
        status, refused, signalled = run_once(fake_node(Path({str(tmp_path)!r}), {body!r}))
        print(f"status={{status}} signalled={{signalled}}", flush=True)
    """))
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, str(script)], cwd=repo, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert "deactivated" in out and "status=0 signalled=True" in out
