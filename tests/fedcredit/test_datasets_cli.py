"""``fedcredit datasets``: the listing, export, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from fedcredit.cli.datasets import datasets_app


def test_the_listing_names_rows_target_bad_rate_and_licence() -> None:
    res = CliRunner().invoke(datasets_app, [], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for expected in ("uci", "30,000", "default_next_month", "22.1%",
                     "german", "1,000", "bad", "30.0%", "CC-BY-4.0", "README.md"):
        assert expected in res.output


def test_export_writes_the_shared_csv(tmp_path: Path, data_dir: Path) -> None:
    res = CliRunner().invoke(datasets_app, ["export", "german", str(tmp_path / "g.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g.csv").read_bytes() == (data_dir / "german_credit.csv").read_bytes()


def test_an_unknown_name_is_one_line_exit_2(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "fedcredit.cli.main", "datasets", "export", "mnist",
                          str(tmp_path / "x.csv")], capture_output=True, text=True, cwd=tmp_path,
                         check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "uci, german" in res.stderr
