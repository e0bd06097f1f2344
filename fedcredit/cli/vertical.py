"""``fedcredit vertical`` (bank + credit center) and ``fedcredit generate`` (synthetic pair)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer import Option as Opt

from fedcredit.cli.products import help_text
from fedcredit.cli.progress import RunProgress
from federation.run.folder import RunFolder
from federation.run.results import Metrics, VerticalResults
from federation.run.vertical_config import DEFAULT_ENTERPRISES, DEFAULT_OVERLAP, VerticalConfig

console = Console(soft_wrap=True)  # a log or pipe gets whole lines, not 80-column cuts

V = VerticalConfig()  # the one source of the vertical defaults below


def generate(
    out: Path = Opt(Path(V.bank_data).parent, help="Folder for bank.csv and center.csv."),
    enterprises: int = Opt(DEFAULT_ENTERPRISES, help="Rows per party (enterprises each side holds)."),
    overlap: float = Opt(DEFAULT_OVERLAP, help="Share of each side's enterprises that the other side also has."),
    seed: int = Opt(0, help="Seed of the generator."),
) -> None:
    """Write a synthetic bank/credit-center pair keyed by unified social credit codes.

    The bank file holds loan features and the default label, the center file public-credit
    features (tax grade, social insurance, arrears, penalties, court enforcement, ...); the
    two overlap partly and are in different orders. Defaults follow a documented ground-truth
    model (federation/data/synthetic.py).
    """
    from federation.data.synthetic import write_enterprise_pair

    bank, center = write_enterprise_pair(out, enterprises, overlap, seed)
    console.print(f"wrote {bank} and {center} ({enterprises} rows each, overlap {overlap:.0%})")


def vertical(
    bank_data: Path | None = Opt(None, help="Bank file: ID, target and the bank's features (default: a synthetic pair generated into OUT/data)."),
    center_data: Path | None = Opt(None, help="Credit-center file: ID and public-credit features."),
    id_col: str = Opt(V.id_col, "--id-col", help="Entity key column in both files."),
    target: str = Opt(V.target, help="Target column of the bank file, 1 = bad."),
    positive_label: str | None = Opt(None, help="Target value meaning 'bad' when the target is not 0/1."),
    epochs: int = Opt(V.epochs, help="Passes over the training rows."),
    batch_size: int = Opt(V.batch_size, help="Rows per mini-batch (public schedule)."),
    learning_rate: float = Opt(V.learning_rate, help="Gradient step size."),
    l2: float = Opt(V.l2, help="L2 penalty on the weights."),
    bins: int = Opt(V.bins, help="Bins per numeric feature for WOE/IV."),
    binning: str = Opt(V.binning, help="quantile or equal-width."),
    key_bits: int = Opt(V.key_bits, help="Paillier key size of each party (>= 2048)."),
    seed: int = Opt(V.seed, help="Seed of the batch schedule."),
    model: str = Opt(V.model, help="lr (Paillier vertical logistic regression) or secureboost (vertical boosted trees: the bank's encrypted gradients, the center's encrypted bin sums, the center keeps its thresholds)."),
    trees: int = Opt(V.trees, help="secureboost: number of trees."),
    depth: int = Opt(V.depth, help="secureboost: levels of splits per tree."),
    tree_bins: int = Opt(V.tree_bins, help="secureboost: quantile bins per feature (2..255)."),
    tree_learning_rate: float = Opt(V.tree_learning_rate, help="secureboost: shrinkage of every tree."),
    transport: str = Opt(V.transport, help="lr: how the per-batch messages travel. messages: each one a Flower message the coordinator relays (3 per batch); stream: one Flower message per party and epoch, the batches as sealed frames through the coordinator's relay at --relay-host (deployed, each node's [policy] peer-relay-hosts must list it; much faster deployed)."),
    relay_host: str = Opt(V.relay_host, help="--transport stream: the host the coordinator's relay listens on and the parties connect to."),
    relay_port: int = Opt(V.relay_port, help="--transport stream: the relay's TCP port (0: a free one per epoch)."),
    out: Path = Opt(Path(V.out), help="Run folder for results.json."),
    record_wire: bool = Opt(False, "--record-wire", help="Write every message both parties get and send to OUT/wire.jsonl (check it with `fedcredit audit wire`)."),
) -> None:
    """Vertical federated credit model: a bank and the credit center, same enterprises,
    different features.

    ECDH-PSI aligns the two files without revealing non-shared IDs, secure binning gives one
    WOE/IV table for both parties' features without the center seeing labels, and
    Paillier-protected logistic regression trains each party's weights on its own node. The
    held-out part of the intersection is scored through the protected path and compared with
    the same LR on the joined plaintext data and on the bank's features alone.
    """
    from fedcredit.simulation.vertical import run_vertical

    if bank_data is None or center_data is None:
        from federation.data.synthetic import write_enterprise_pair

        bank_data, center_data = write_enterprise_pair(out / "data", seed=seed)
        console.print(f"no files given: using a synthetic pair in {out / 'data'}")
    cfg = VerticalConfig(
        bank_data=str(bank_data), center_data=str(center_data), id_col=id_col, target=target,
        positive_label=positive_label or "", epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, l2=l2, bins=bins, binning=binning, key_bits=key_bits,
        seed=seed, out=str(out), model=model, trees=trees, depth=depth, tree_bins=tree_bins,
        tree_learning_rate=tree_learning_rate, transport=transport, relay_host=relay_host,
        relay_port=relay_port)
    with RunProgress(console, total=1, unit="step") as progress:
        results = run_vertical(cfg, on_progress=progress.steps, record_wire=record_wire)
    print_vertical(results, RunFolder(out).results)
    if model == "lr":
        console.print(f"each party's model part: {RunFolder(out).party('bank')}, "
                      f"{RunFolder(out).party('center')} (serve them: `fedcredit models promote "
                      f"{out} --name NAME --part bank` at the bank, `--part center` at the "
                      "center)", highlight=False)


def _n(value: float | None) -> float:
    """A measured number for printing (NaN where it could not be measured)."""
    return math.nan if value is None else value


def print_vertical(results: VerticalResults, path: Path) -> None:
    """Tables of a vertical run: PSI, model comparison, IV (its results written to ``path``)."""
    psi = results.psi
    console.print(f"PSI: bank {psi.bank_rows} rows, center {psi.center_rows} rows, "
                  f"intersection {psi.intersection} ({psi.seconds:.1f} s)")
    table = Table(title="held-out part of the intersection")
    for name in ("model", "AUC", "KS"):
        table.add_column(name, justify="left" if name == "model" else "right")
    models: tuple[tuple[str, Metrics | None], ...] = (
        (f"federated ({'SecureBoost' if results.config.get('model') == 'secureboost' else 'vertical LR'})",
         results.federated),
        ("centralised (joined plaintext)", results.centralized),
        ("bank only", results.bank_only))
    for label, metrics in models:
        if metrics is None:
            raise ValueError(f"print_vertical needs a vertical run's results with '{label}'.")
        table.add_row(label, f"{_n(metrics.auc):.4f}", f"{_n(metrics.ks):.4f}")
    console.print(table)
    iv = Table(title="information value")
    iv.add_column("feature")
    iv.add_column("party")
    iv.add_column("IV", justify="right")
    bank_cols = set(results.bank_columns or ())
    for name, value in sorted(results.iv.items(), key=lambda kv: -kv[1]):
        iv.add_row(name, "bank" if name in bank_cols else "center", f"{value:.4f}")
    console.print(iv)
    console.print(f"epochs {results.epochs}, {sum(results.epoch_seconds):.1f} s training; "
                  f"wall time {_n(results.wall_seconds):.1f} s; results: {path}")


def register(app: typer.Typer) -> None:
    """Add ``vertical`` and ``generate`` to ``app``."""
    app.command("vertical", help=help_text(vertical.__doc__))(vertical)
    app.command("generate", help=help_text(generate.__doc__))(generate)
