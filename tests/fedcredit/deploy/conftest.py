"""Helpers for the deployment tests: run the launcher, check that nothing survived it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fedcredit.deploy.processes import ProcessRecord, is_running, load_records

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = REPO / "scripts" / "local_federation.py"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a ``deploy`` test (``-m "not deploy"`` leaves them out)."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.deploy)


def launcher_argv(out: Path, *args: str) -> list[str]:
    """``python scripts/local_federation.py --out OUT ARGS``."""
    return [sys.executable, str(LAUNCHER), "--out", str(out), *args]


def run_launcher(out: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """Run the launcher to its end (it must stop by itself well within ``timeout``)."""
    return subprocess.run(launcher_argv(out, *args), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def launch_to_results(out: Path, *args: str) -> dict:
    """Run the launcher, require success, and return its ``results.json``."""
    proc = run_launcher(out, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    return json.loads((out / "results.json").read_text())


def started(out: Path) -> list[ProcessRecord]:
    """Every process the launcher recorded (started or seen below one it started)."""
    return load_records(out / "processes.json")


def assert_all_stopped(out: Path) -> list[ProcessRecord]:
    """No recorded process still runs (a zombie or a reused PID does not count)."""
    records = started(out)
    assert records, "the launcher recorded no process"
    alive = [r for r in records if is_running(r)]
    assert not alive, f"still running after the launcher exited: {alive}"
    return records


@pytest.fixture(scope="session")
def german(data_dir: Path) -> Path:
    """The German credit data set (1,000 rows, target ``bad``)."""
    return data_dir / "german_credit.csv"
