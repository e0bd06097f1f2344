"""The query log on PostgreSQL: a throw-away cluster (initdb + pg_ctl from PATH, as an
unprivileged user when the tests run as root), the same checks as on SQLite.

Skipped, saying why, when PostgreSQL's server binaries are not installed or the cluster does
not start (CI images without ``postgresql``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedcredit.service.testbed import free_port
from tests.fedcredit.service.test_service_parts import _exercise_log


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: PostgreSQL refuses to run as root")
    return [runuser, "-u", "nobody", "--", *cmd]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free loopback port; stopped afterwards."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not on PATH; "
                    "apt-get install postgresql to run this test")
    pytest.importorskip("psycopg", reason="psycopg (the test extra) is not installed")
    # not under tmp_path: pytest's base folder is private to root, which the server user is not
    folder = Path(tempfile.mkdtemp(prefix="fedcredit-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    data, port = folder / "data", free_port()
    init = subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", "fedcredit",
                                           "--auth=trust", "-E", "UTF8", "-N"]),
                          capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        pytest.skip(f"initdb failed, no PostgreSQL to test against: {init.stderr[-300:]}")
    start = subprocess.run(_as_server_user([
        pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(folder / "server.log"), "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
        capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-300:]}")
    try:
        yield f"postgresql+psycopg://fedcredit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_query_log_group_commit_and_history_postgresql(postgres_url: str) -> None:
    _exercise_log(postgres_url)
    _exercise_log(postgres_url)  # the tables exist now: opening the log again keeps the rows
