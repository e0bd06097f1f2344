"""The report's run identity (issue 13): what the run recorded itself, beside what the report
finds when it is written (fixtures, no simulation)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fedcredit.report.context import file_sha256, run_context
from fedcredit.report.html import build_report
from federation.run.identity import DATA_SET
from federation.run.results import RunIdentity

from .test_report_sections import horizontal_results, no_drawing, page_numbers, write_run

__all__ = ["no_drawing"]  # the fixture, used by name below


def _report(folder: Path, results: Any) -> str:
    folder.mkdir()
    run = write_run(folder, results)
    return build_report(results, context=run_context(run, results))


def test_the_report_shows_the_runs_own_identity_and_checks_the_file(
        tmp_path: Path, no_drawing: None) -> None:
    digest = file_sha256("german")
    assert digest is not None
    identity = RunIdentity(run_id="0123abcd", fedcredit_version="9.9.9",
                           started_utc="2026-12-07T09:00:05Z",
                           finished_utc="2026-12-07T09:01:20Z", data_sha256={DATA_SET: digest})
    html = _report(tmp_path / "same", replace(horizontal_results(), identity=identity))
    keyed, _ = page_numbers(html)
    assert keyed[("identity", "run_id")] == "0123abcd"
    assert keyed[("identity", "fedcredit_version")] == "9.9.9"
    assert keyed[("identity", "started_utc")] == "2026-12-07T09:00:05Z"
    assert keyed[("identity", "finished_utc")] == "2026-12-07T09:01:20Z"
    assert keyed[("identity", "data_sha256", DATA_SET)] == digest
    assert "(the same file)" in html and "DIFFERS" not in html
    changed = replace(identity, data_sha256={DATA_SET: "0" * 64})
    assert "DIFFERS: the file changed since the run" in _report(
        tmp_path / "changed", replace(horizontal_results(), identity=changed))
    deployed = replace(identity, data_sha256=None)
    html = _report(tmp_path / "deployed", replace(horizontal_results(), identity=deployed))
    assert "records no data hash" in html and "as the run read it" not in html
    old = _report(tmp_path / "old", horizontal_results())
    assert "predates the run identity" in old and "identity" not in {
        k[0] for k in page_numbers(old)[0]}
