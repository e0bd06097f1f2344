"""``fedcredit datasets``: the public data sets shipped with the package (list, export).

``fedcredit datasets`` lists them (rows, target, bad rate, licence, source);
``fedcredit datasets export NAME PATH`` writes one as a plain CSV. Anywhere a data file is
asked for, ``--data NAME`` uses the embedded copy (thin over :mod:`federation.data.embedded`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from federation.data.embedded import EMBEDDED_DATASETS, embedded_file, export_dataset, summarize

console = Console()
datasets_app = typer.Typer(help="The public credit data sets shipped with fedcredit (--data uci, --data german).",
                           add_completion=False)


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context) -> None:
    """List the embedded data sets (pass a name as --data anywhere a CSV is asked for);
    `fedcredit datasets export NAME PATH` writes one as a CSV."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="embedded data sets (package data; nothing is downloaded)")
    for name in ("name", "rows", "cols", "target", "bad rate", "licence"):
        table.add_column(name, no_wrap=True,
                         justify="right" if name in ("rows", "cols", "bad rate") else "left")
    for dataset in EMBEDDED_DATASETS.values():
        summary = summarize(dataset)
        table.add_row(dataset.name, f"{summary.rows:,}", str(summary.columns), dataset.target,
                      f"{summary.bad_rate:.1%}", dataset.licence)
    console.print(table)
    for dataset in EMBEDDED_DATASETS.values():
        console.print(f"{dataset.name}: {dataset.title}", highlight=False, soft_wrap=True)
    notice = embedded_file(next(iter(EMBEDDED_DATASETS.values()))).parent / "README.md"
    console.print(f"attribution: {notice}\nuse: --data NAME; export: fedcredit datasets export "
                  "NAME PATH", soft_wrap=True, highlight=False)


@datasets_app.command("export")
def export(
    name: str = typer.Argument(..., help="Embedded data set: uci or german."),
    path: Path = typer.Argument(..., help="CSV file to write (a folder: NAME's own file name in it)."),
) -> None:
    """Write an embedded data set as a plain CSV (the same bytes as the project's CSV file)."""
    written = export_dataset(name, path)
    console.print(f"{name} -> {written}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``datasets`` (and ``datasets export``) to ``app``."""
    app.add_typer(datasets_app, name="datasets")
