"""``fedcredit audit wire``: the leak scanner of a run recorded with ``--record-wire``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(soft_wrap=True)


def wire(
    run_dir: Path = typer.Argument(..., help="Run folder holding wire.jsonl (a run recorded with --record-wire, or a bank's own folder)."),
    data: Path = typer.Option(..., help="The data file whose rows must not be on the wire (an embedded data set by name: uci, german)."),
    target: str | None = typer.Option(None, help="Target column (default: the run's, when the file has it; none for a credit center's file)."),
    id_col: str | None = typer.Option(None, "--id-col", help="Entity key column (default: a column named 'ID' or 'uscc')."),
) -> None:
    """Search a run's wire transcript for the data file's labels, feature values and IDs.

    Every value of every recorded message is checked against the wire's allow-list and read
    as float64, float32, int64, int32, int8, packed bits and text (UTF-8, UTF-16); it is
    compared with the labels (64 in a row, in file order, ID order and each party's own row
    order), the numeric columns (raw and standardised) and the IDs. Prints one line per
    finding and exits 1; exits 0 with a summary of what was checked otherwise.
    """
    from fedcredit.audit_wire.scan import audit_wire

    report = audit_wire(run_dir, data, target=target, id_col=id_col)
    for finding in report.findings:
        console.print(finding.describe(), markup=False, highlight=False)
    if report.findings:
        console.print(f"[bold red]{len(report.findings)} finding(s)[/] in {report.messages} "
                      "messages", highlight=False)
        raise typer.Exit(code=1)
    console.print(f"[green]no finding[/]: {report.summary()}", highlight=False)


def register(audit_app: typer.Typer) -> None:
    """Add ``wire`` to the ``audit`` group."""
    from fedcredit.cli.products import help_text

    audit_app.command("wire", help=help_text(wire.__doc__))(wire)
