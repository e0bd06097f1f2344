"""Data quality: figures are right; blocking problems block (CLI exit 1, node refuses to join)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from federation.data.quality import assert_ready, out_of_range_count, quality_report
from federation.data.synthetic import generate_enterprise_pair
from federation.data.table import load_credit_csv
from federation.errors import DataError


def test_out_of_range_counts_extremes_and_stray_negatives() -> None:
    x = np.concatenate([np.linspace(100, 200, 500), [1e7, -5.0, np.nan]])
    assert out_of_range_count(x) == 2


def test_report_on_german_credit(data_dir: Path) -> None:
    report = quality_report(data_dir / "german_credit.csv", target="bad")
    assert report.ok and report.rows == 1000 and abs(report.bad_rate - 0.3) < 1e-9
    assert len(report.columns) == 20 and all(c.missing_rate == 0 for c in report.columns)


def test_missing_rates_and_invalid_uscc_ids(tmp_path: Path) -> None:
    bank, _, _ = generate_enterprise_pair(200, seed=3)
    bank.loc[5, "uscc"] = bank.loc[5, "uscc"][:-1] + ("0" if bank.loc[5, "uscc"][-1] != "0" else "1")
    bank.loc[:59, "loan_amount"] = np.nan
    path = tmp_path / "bank.csv"
    bank.to_csv(path, index=False)
    report = quality_report(path, target="default", id_col="uscc")
    assert not report.ok and report.invalid_ids == 1
    assert "row 6" in report.blocking[0] and "not a valid unified social credit code" in report.blocking[0]
    assert any("loan_amount' is 30% missing" in w for w in report.warnings)
    with pytest.raises(DataError, match="unified social credit code"):
        assert_ready(load_credit_csv(path, target="default", id_col="uscc"))


def test_check_cli_exit_codes(tmp_path: Path, data_dir: Path) -> None:
    from fedcredit.cli.main import app

    runner = CliRunner()
    good = runner.invoke(app, ["check", "--data", str(data_dir / "german_credit.csv"), "--target", "bad"])
    assert good.exit_code == 0 and "1000 rows" in good.output
    bad = tmp_path / "dup.csv"
    bad.write_text("ID,a,t\n1,5,0\n1,6,1\n")
    result = runner.invoke(app, ["check", "--data", str(bad), "--target", "t"])
    assert result.exit_code == 1 and "duplicate ID" in result.output


def test_check_cli_says_a_file_was_not_loaded_and_defines_its_rules(data_dir: Path) -> None:
    from fedcredit.cli.main import app

    result = CliRunner().invoke(app, ["check", "--data", str(data_dir / "german_credit.csv"),
                                      "--target", "default"])  # misnamed target
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "not loaded" in said and "0 rows" not in said
    assert "target column 'default' not found" in said
    assert "out of range: a numeric value more than 10 interquartile ranges" in said
