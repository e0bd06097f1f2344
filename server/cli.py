"""The ``fedcredit`` command line (typer). Every expected failure prints one line, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clients.keys_cli import keys_app
from server.products_cli import register as register_products
from protocols.errors import FedCreditError

app = typer.Typer(
    help="fedcredit: privacy-preserving federated credit analytics (banks + credit center).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """fedcredit: privacy-preserving federated credit analytics (banks + credit center)."""


app.add_typer(keys_app, name="keys")
register_products(app)


@app.command()
def simulate(
    data: Path = typer.Option(Path("../shared/data/uci_default_credit.csv"), help="Credit CSV with a binary target (every bank's rows, split for simulation)."),
    target: str = typer.Option("default_next_month", help="Target column, 1 = bad."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Entity key column (default: a column named 'ID' if present)."),
    positive_label: Optional[str] = typer.Option(None, help="Target value meaning 'bad' when the target is not 0/1."),
    banks: int = typer.Option(5, help="Number of simulated banks (Flower SuperNodes)."),
    rounds: int = typer.Option(10, help="Federated rounds."),
    model: str = typer.Option("lr", help="lr (logistic regression) or mlp."),
    partition: str = typer.Option("iid", help="iid, dirichlet (label skew) or by-column (quantiles of --partition-col)."),
    partition_col: Optional[str] = typer.Option(None, help="Size column for by-column (default LIMIT_BAL or the first numeric column)."),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration; smaller = more skew."),
    strategy: str = typer.Option("fedavg", help="fedavg or fedprox."),
    mu: float = typer.Option(0.01, help="FedProx proximal weight."),
    local_epochs: int = typer.Option(1, help="Local epochs per round."),
    batch_size: int = typer.Option(128, help="Mini-batch size."),
    learning_rate: float = typer.Option(0.05, help="SGD learning rate (decays 0.9x per round)."),
    seed: int = typer.Option(0, help="Seed of the split, initial weights and batch order."),
    aggregation: str = typer.Option("plain", help="plain (coordinator sees updates) or paillier (coordinator sees only ciphertexts)."),
    keys_dir: Optional[Path] = typer.Option(None, help="Key-ceremony folder for paillier (default: a fresh ceremony in OUT/keys)."),
    key_bits: int = typer.Option(2048, help="Paillier modulus size for a fresh ceremony (>= 2048)."),
    out: Path = typer.Option(Path("runs/latest"), help="Run folder for results.json and the model."),
) -> None:
    """Run a horizontal federation of simulated banks and compare it with the baselines.

    Trains the federated model with Flower's simulation engine, the centralised model (all
    banks' training rows pooled) and each bank's local-only model on the same split; prints a
    table and writes OUT/results.json.
    """
    from federation.config import RunConfig
    from server.simulation import simulate as run_simulate

    cfg = RunConfig(
        data_path=str(data), target=target, id_col=id_col or "", positive_label=positive_label or "",
        banks=banks, rounds=rounds, model=model, partition=partition,
        partition_col=partition_col or "", alpha=alpha, strategy=strategy, mu=mu,
        local_epochs=local_epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        aggregation=aggregation, keys_dir=str(keys_dir or ""), key_bits=key_bits, out=str(out),
    )
    console.print(f"[bold]fedcredit simulate[/]: {data} | {banks} banks | {rounds} rounds | "
                  f"{model} | {partition} | {strategy} | aggregation={aggregation}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting", total=rounds, info="")

        def on_round(rec: Any) -> None:
            bar.update(task, advance=1, description="federated rounds",
                       info=f"round {rec.round}: AUC {rec.auc:.4f} KS {rec.ks:.4f}")

        def on_phase(name: str) -> None:
            bar.update(task, description=name)

        results = run_simulate(cfg, on_round=on_round, on_phase=on_phase)
    print_results(results)


def print_results(results: dict[str, Any]) -> None:
    """The comparison table of a simulate run."""
    table = Table(title=f"{results['dataset']} - {results['banks']} banks, {results['rounds']} rounds")
    table.add_column("model")
    table.add_column("AUC", justify="right")
    table.add_column("KS", justify="right")
    fed, cen = results["federated"], results["centralized"]
    table.add_row(f"federated ({results['aggregation']})", f"{fed['auc']:.4f}", f"{fed['ks']:.4f}")
    table.add_row("centralised (pooled)", f"{cen['auc']:.4f}", f"{cen['ks']:.4f}")
    for bank in results["local_only"]["per_bank"]:
        table.add_row(f"local-only bank {bank['bank']} ({bank['train_rows']} rows)",
                      f"{bank['auc']:.4f}", f"{bank['ks']:.4f}")
    table.add_row("local-only mean", f"{results['local_only']['mean_auc']:.4f}", "")
    console.print(table)
    console.print(f"federated - centralised AUC: {fed['auc'] - cen['auc']:+.4f}; "
                  f"wall time {results['wall_seconds']:.1f} s; results: {results['results_path']}")


def main() -> None:
    """Console entry point: named errors become one line on stderr and exit code 2."""
    try:
        app()
    except FedCreditError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
