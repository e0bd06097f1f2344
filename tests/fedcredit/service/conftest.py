"""Fixtures of the credit query service tests: a bank + center pair of real processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedcredit.service.auth import add_key
from fedcredit.service.testbed import ServiceProcess, Testbed, build_testbed


@dataclass
class Pair:
    """The running pair and what the tests need to reach it."""

    bed: Testbed
    bank: ServiceProcess
    center: ServiceProcess
    branch_key: str  # a second 'score' institution (the 429 test spends its bucket)

    def bank_rows(self) -> list[sqlite3.Row]:
        """The bank's query log, oldest first (read-only connection)."""
        return _rows(self.bed.folder / "bank" / "queries-bank.db")

    def center_rows(self) -> list[sqlite3.Row]:
        """The center's query log, oldest first."""
        return _rows(self.bed.folder / "center" / "queries-center.db")


def _rows(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM queries ORDER BY id"))
    finally:
        conn.close()


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Testbed:
    """Synthetic pair, scorecard, registries with v1 promoted, keys and settings."""
    return build_testbed(tmp_path_factory.mktemp("service"), enterprises=1500,
                         rate_limit=40.0, reload_seconds=0.3)


@pytest.fixture(scope="module")
def pair(testbed: Testbed) -> Iterator[Pair]:
    """Center and bank processes (``fedcredit serve``) on free loopback ports."""
    branch_key = add_key(testbed.folder / "bank" / "service-keys.json", "branch-7", ("score",))
    # every institution may send 40 requests a second (burst 40): the tests stay below it,
    # except the 429 test, which spends branch-7's bucket only
    center = ServiceProcess(testbed.center_config, testbed.center_port,
                            log=testbed.folder / "center.log").start()
    bank = ServiceProcess(testbed.bank_config, testbed.bank_port,
                          log=testbed.folder / "bank.log")
    try:
        bank.start()
    except RuntimeError:
        center.stop()
        raise
    yield Pair(testbed, bank, center, branch_key)
    bank.stop()
    center.stop()
