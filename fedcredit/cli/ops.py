"""``fedcredit check`` (a node's data quality) and ``fedcredit audit verify`` (a run's log);
``fedcredit audit wire`` lives in fedcredit/cli/wire_audit.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fedcredit.cli.products import help_text
from federation.run.folder import RunFolder

console = Console()
audit_app = typer.Typer(help="Audit log of a run.", no_args_is_help=True, add_completion=False)


def check(
    data: Path = typer.Option(..., help="The node's CSV file (or an embedded data set: uci, german)."),
    target: str = typer.Option(..., help="Target column, 1 = bad."),
    id_col: str | None = typer.Option(None, "--id-col", help="Entity key column (default: a column named 'ID')."),
) -> None:
    """Data quality report of one node's file: missing rates, out-of-range values, invalid and
    duplicate IDs. Exits 1 when a problem blocks the node from joining a federation.

    Nothing is sent anywhere; the same check runs when a bank node joins a federation.
    """
    from federation.data.quality import RULES as QUALITY_RULES
    from federation.data.quality import quality_report

    report = quality_report(data, target=target, id_col=id_col)
    size = "not loaded" if report.rows is None else f"{report.rows} rows"
    console.print(f"[bold]{report.source}[/]: {size}"
                  + (f", bad rate {report.bad_rate:.1%}" if report.bad_rate is not None else ""),
                  soft_wrap=True)
    if report.columns:
        table = Table()
        for name in ("column", "kind", "missing", "out of range"):
            table.add_column(name)
        for col in report.columns:
            table.add_row(col.name, col.kind, f"{col.missing_rate:.1%}", str(col.out_of_range))
        console.print(table)
    console.print(f"invalid IDs: {report.invalid_ids}; duplicate IDs: {report.duplicate_ids}")
    for line in report.warnings:
        console.print(f"[yellow]warning:[/] {line}")
    for line in report.blocking:
        console.print(f"[bold red]blocking:[/] {line}", soft_wrap=True)
    console.print("rules: " + "; ".join(f"{name}: {rule}" for name, rule in QUALITY_RULES),
                  style="dim", soft_wrap=True)
    raise typer.Exit(code=0 if report.ok else 1)


@audit_app.command("verify")
def verify(
    run_dir: Path = typer.Argument(..., help="Run folder holding audit.jsonl."),
    bank_heads: list[Path] = typer.Option(  # noqa: B008 (typer's option declaration)
        [], help="A bank's audit-heads.jsonl (or its folder); repeat for every bank."),
    signing_registry: Path | None = typer.Option(
        None, help="signing-registry.json (default: RUN_DIR/keys/signing-registry.json)."),
) -> None:
    """Check the run's hash-chained audit log; exits 1 naming the first broken record.

    With --bank-heads, also checks every head the banks signed and kept in their own folders:
    a log cut short or rewritten (even re-hashed) is reported with the round concerned.
    """
    from server.audit import verify_audit

    folder = RunFolder(run_dir)
    verdict = verify_audit(run_dir, must_contain=_json_field(folder.checkpoint, "audit_head"),
                           final_head=_reported_head(folder))
    if verdict.ok and bank_heads:
        verdict = _against_bank_heads(folder, bank_heads, signing_registry)
    style = "green" if verdict.ok else "bold red"
    console.print(f"[{style}]{'intact' if verdict.ok else 'BROKEN'}[/]: {verdict.message}",
                  soft_wrap=True)
    raise typer.Exit(code=0 if verdict.ok else 1)


def _against_bank_heads(folder: RunFolder, paths: list[Path], registry: Path | None) -> Any:
    """The log checked against the banks' kept heads (an unreadable file is a failed check)."""
    from federation.errors import ConfigError
    from federation.run.audit_heads import read_heads
    from federation.run.folder import AUDIT_HEADS_FILE
    from federation.run.key_store import signing_registry_from_file
    from protocols.errors import FedCreditError
    from server.audit import AuditVerdict, verify_bank_heads

    registry_file = registry or folder.keys.signing_registry
    try:
        if not registry_file.exists():
            raise ConfigError(f"{registry_file} not found; pass --signing-registry with the "
                              "federation's signing-registry.json.")
        keys = signing_registry_from_file(registry_file)
        heads = [read_heads(p / AUDIT_HEADS_FILE if p.is_dir() else p) for p in paths]
    except (FedCreditError, OSError) as exc:
        return AuditVerdict(False, 0, str(exc))
    return verify_bank_heads(folder.path, heads, keys)


def _reported_head(folder: RunFolder) -> str | None:
    """The audit head the run wrote into its results.json, or None when it has none (a
    missing or malformed results.json leaves only the chain itself to check)."""
    from federation.errors import RunFolderError
    from federation.run.results import HorizontalResults, read_results

    try:
        results = read_results(folder.results)
    except RunFolderError:
        return None
    audit = results.audit if isinstance(results, HorizontalResults) else None
    return audit.head if audit is not None else None


def _json_field(path: Path, *keys: str) -> str | None:
    """A nested field of a JSON file, or None when the file or field is absent."""
    try:
        value = json.loads(path.read_text())
        for key in keys:
            value = value[key]
        return str(value)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``audit`` to ``app``."""
    from fedcredit.cli.wire_audit import register as register_wire

    app.command("check", help=help_text(check.__doc__))(check)
    register_wire(audit_app)
    app.add_typer(audit_app, name="audit")
