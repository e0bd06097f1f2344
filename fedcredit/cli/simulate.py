"""``fedcredit simulate`` and ``fedcredit resume``: the main job and its continuation."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table
from typer import Option as Opt

from fedcredit.cli.products import help_text
from fedcredit.cli.progress import RunProgress
from fedcredit.simulation.local_summary import SUMMARY_ABOVE, LocalSummary, summarise_local
from federation.run.config import GBDT_LEARNING_RATE, RunConfig
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults

console = Console(soft_wrap=True)  # a log or pipe gets whole lines, not 80-column cuts

H = RunConfig()  # the one source of the defaults below


def simulate(
    data: Path = Opt(Path(H.data_path), help="Credit CSV with a binary target (all banks' rows; split for the simulation), or an embedded data set: uci, german (`fedcredit datasets`)."),
    target: str = Opt(H.target, help="Target column, 1 = bad (left at the default with an embedded data set: that set's own target)."),
    id_col: str | None = Opt(None, "--id-col", help="Entity key column (default: a column named 'ID' if present)."),
    positive_label: str | None = Opt(None, help="Target value meaning 'bad' when the target is not 0/1."),
    banks: int = Opt(H.banks, help="Number of simulated banks (Flower SuperNodes)."),
    rounds: int = Opt(H.rounds, help="Federated rounds."),
    model: str = Opt(H.model, help="lr (logistic regression), mlp, or gbdt (histogram gradient-boosted trees, grown level by level from sealed histograms)."),
    partition: str = Opt(H.partition, help="iid, dirichlet (label skew) or by-column (quantiles of --partition-col)."),
    partition_col: str | None = Opt(None, help="Size column for by-column (default LIMIT_BAL or the first numeric column)."),
    alpha: float = Opt(H.alpha, help="Dirichlet concentration; smaller = more skew."),
    strategy: str = Opt(H.strategy, help="fedavg or fedprox."),
    mu: float = Opt(H.mu, help="FedProx proximal weight."),
    local_epochs: int = Opt(H.local_epochs, help="Local epochs per round."),
    batch_size: int = Opt(H.batch_size, help="Mini-batch size."),
    learning_rate: float | None = Opt(None, help=f"SGD learning rate, decaying 0.9x per round (default {H.learning_rate}); for gbdt the shrinkage of every tree (default {GBDT_LEARNING_RATE})."),
    trees: int = Opt(H.trees, help="gbdt: number of trees (one federated round each)."),
    depth: int = Opt(H.depth, help="gbdt: levels of splits per tree (1..12)."),
    bins: int = Opt(H.bins, help="gbdt: value bins per numeric feature (2..255), quantiles of the federated fine counts."),
    l2: float = Opt(H.l2, help="gbdt: L2 penalty on leaf values (XGBoost's lambda)."),
    min_child_weight: float = Opt(H.min_child_weight, help="gbdt: least hessian sum of a child."),
    subsample: float = Opt(H.subsample, help="gbdt: fraction of rows each tree sees (seeded by row id)."),
    gradient_bits: int = Opt(H.gradient_bits, help="gbdt: fixed-point bits of gradients (exact sums: the federated trees equal the pooled ones)."),
    early_stopping_rounds: int = Opt(H.early_stopping_rounds, help="gbdt: hold out a tenth of each bank's training rows; stop when their pooled validation score (--early-stopping-metric) has not improved for this many trees and keep the best trees, as XGBoost does (0 = off)."),
    early_stopping_metric: str = Opt(H.early_stopping_metric, help="gbdt: auc (the federated AUC of the held-out rows, from sealed score histograms: 2,048 more sealed values a tree) or logloss (exact sealed log-loss sums: 2 values a tree)."),
    eval_every: int = Opt(H.eval_every, help="gbdt: take the federated test AUC/KS after every N-th tree and for the final model (1 = every tree; under Paillier the test-score counts are about a fifth of a tree's ciphertexts)."),
    seed: int = Opt(H.seed, help="Seed of the split, initial weights and batch order."),
    aggregation: str = Opt(H.aggregation, help="plain (coordinator sees updates), paillier (coordinator sees only ciphertexts), secagg (SecAgg+ pairwise masks: coordinator sees only sums; fast) or paillier-secagg (masks under Paillier: no bank can open another's update)."),
    keys_dir: Path | None = Opt(None, help="Key-ceremony folder (default: a fresh ceremony in OUT/keys)."),
    key_bits: int = Opt(H.key_bits, help="Paillier modulus size for a fresh ceremony (>= 2048)."),
    min_banks: int = Opt(H.min_banks, help="Banks that must answer each step (0 = max(3, ceil(2K/3)), at most K); late or failed banks are recorded and skipped."),
    fraction_fit: float = Opt(H.fraction_fit, help="Partial participation: share F of the banks asked to train in each round, sampled afresh (seeded by --seed and the round); at least 3 (and --min-banks), and max(3, ceil(2S/3)) of the S sampled must answer. Plain or paillier, lr or mlp; preprocessing and the last round's evaluation keep every bank."),
    round_timeout: float = Opt(H.round_timeout, help="Seconds to wait for the banks' answers in each step."),
    drop_schedule: str = Opt(H.drop_schedule, help="Fault injection: 'ROUND:BANK,BANK;...' makes banks vanish in those rounds."),
    halt_after: int = Opt(H.halt_after, help="Fault injection: stop the coordinator after this round (resume with 'fedcredit resume')."),
    dp_epsilon: float = Opt(H.dp_epsilon, help="Differential privacy: each bank trains with DP-SGD (lr, mlp) or noises every tree level's gradient/hessian histograms and its bin counts (gbdt: use few shallow trees, e.g. --trees 20 --depth 1 --bins 8 --learning-rate 0.5; no early stopping), and noises its score histograms and statistics, so that the whole run meets this epsilon per bank and borrower (0 = off; results.json 'privacy')."),
    dp_delta: float = Opt(H.dp_delta, help="The delta of --dp-epsilon (0 = 1 / (10 x the bank's training rows))."),
    dp_clip: float = Opt(H.dp_clip, help="DP-SGD's per-sample gradient norm bound."),
    out: Path = Opt(Path(H.out), help="Run folder: results.json, model, checkpoint, audit.jsonl, keys/."),
    record_wire: bool = Opt(False, "--record-wire", help="Write every message the banks get and send to OUT/wire.jsonl (check it with `fedcredit audit wire`)."),
    resume_dir: Path | None = Opt(None, "--resume", help="Continue the stopped run in this folder (its settings come from its checkpoint; other options are ignored)."),
) -> None:
    """Run a horizontal federation of simulated banks and compare it with the baselines.

    Trains the federated model with Flower's simulation engine, the centralised model (all
    banks' training rows pooled) and each bank's local-only model on the same split; prints a
    table and writes OUT/results.json. A checkpoint and a hash-chained audit log are written
    after every round.
    """
    if resume_dir is not None:
        resume(resume_dir)
        return
    cfg = RunConfig(
        data_path=str(data), target=target, id_col=id_col or "", positive_label=positive_label or "",
        banks=banks, rounds=rounds, model=model, partition=partition,
        partition_col=partition_col or "", alpha=alpha, strategy=strategy, mu=mu,
        local_epochs=local_epochs, batch_size=batch_size, seed=seed,
        learning_rate=learning_rate if learning_rate is not None else (
            GBDT_LEARNING_RATE if model == "gbdt" else H.learning_rate),
        trees=trees, depth=depth, bins=bins, l2=l2, min_child_weight=min_child_weight,
        subsample=subsample, gradient_bits=gradient_bits,
        early_stopping_rounds=early_stopping_rounds,
        early_stopping_metric=early_stopping_metric, eval_every=eval_every,
        aggregation=aggregation, keys_dir=str(keys_dir or ""), key_bits=key_bits,
        min_banks=min_banks, fraction_fit=fraction_fit, round_timeout=round_timeout, drop_schedule=drop_schedule,
        halt_after=halt_after, dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_clip=dp_clip,
        out=str(out),
    )
    run_with_progress(cfg, resume=False, record_wire=record_wire)


def resume(
    run_dir: Path = typer.Argument(..., help="Run folder of a stopped run (holds checkpoint.json)."),
) -> None:
    """Continue a stopped or crashed simulation from its last checkpoint.

    The run's settings come from the checkpoint; the final model equals that of an
    uninterrupted run with the same seeds.
    """
    from dataclasses import replace

    from server.checkpoint import load_checkpoint

    cfg, state, _ = load_checkpoint(run_dir)
    console.print(f"resuming run {state.run_id} after round {state.rounds_done} of "
                  f"{cfg.rounds_planned}")
    run_with_progress(replace(cfg, out=str(run_dir), halt_after=0), resume=True,
                      done=state.rounds_done)


def run_with_progress(cfg: RunConfig, *, resume: bool, done: int = 0,
                      record_wire: bool = False) -> None:
    """Run (or resume) with a rich progress bar per round, then print the table (with
    ``record_wire`` the banks' messages go to OUT/wire.jsonl)."""
    from fedcredit.simulation.horizontal import simulate as run_simulate

    shape = (f"{cfg.trees} trees of depth {cfg.depth}, {cfg.bins} bins" if cfg.model == "gbdt"
             else f"{cfg.rounds} rounds | {cfg.model} | {cfg.strategy}")
    console.print(f"[bold]fedcredit simulate[/]: {cfg.data_path} | {cfg.banks} banks | "
                  f"{shape} | {cfg.partition} | aggregation={cfg.aggregation}")
    unit = "tree" if cfg.model == "gbdt" else "round"
    with RunProgress(console, total=cfg.rounds_planned, unit=unit, done=done) as progress:
        results = run_simulate(cfg, on_round=progress.round, resume=resume,
                               on_progress=progress.advance, on_phase=progress.stage,
                               record_wire=record_wire)
    print_results(results, RunFolder(Path(cfg.out)).results)


def _n(value: float | None) -> float:
    """A measured number for printing (NaN where it could not be measured)."""
    return math.nan if value is None else value


def print_results(results: HorizontalResults, path: Path) -> None:
    """The comparison table of a simulate run (its results written to ``path``)."""
    if results.federated is None or results.centralized is None or results.local_only is None:
        raise ValueError("print_results needs a simulate run's results (with its baselines).")
    unit = "trees" if results.model == "gbdt" else "rounds"
    table = Table(title=f"{results.dataset} - {results.banks} banks, {results.rounds} {unit}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (("model", "left"), ("AUC", "right"),
                                                      ("KS", "right"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    fed, cen, local = results.federated, results.centralized, results.local_only
    table.add_row(f"federated ({results.aggregation})", f"{_n(fed.auc):.4f}", f"{_n(fed.ks):.4f}")
    table.add_row("centralised (pooled)", f"{_n(cen.auc):.4f}", f"{_n(cen.ks):.4f}")
    if len(local.per_bank) > SUMMARY_ABOVE:  # many banks: the spread, per bank in results.json
        _local_summary_rows(table, summarise_local(local))
    else:
        for bank in local.per_bank:
            table.add_row(f"local-only bank {bank.bank} ({bank.train_rows} rows)",
                          f"{_n(bank.auc):.4f}", f"{_n(bank.ks):.4f}")
    table.add_row("local-only mean", f"{_n(local.mean_auc):.4f}", "")
    lr = results.trees.lr_reference if results.trees is not None else None
    if lr is not None:
        table.add_row("logistic regression, pooled (reference)", f"{_n(lr.auc):.4f}",
                      f"{_n(lr.ks):.4f}")
    console.print(table)
    if results.privacy:
        worst = max(results.privacy, key=lambda p: p.epsilon)
        console.print(f"differential privacy: every bank's borrowers at epsilon <= "
                      f"{worst.epsilon:.3g}, delta <= {max(p.delta for p in results.privacy):.2g} "
                      f"({worst.accountant} accountant; results.json 'privacy'); the baselines "
                      "are not private")
    if results.dropouts:
        console.print(f"[yellow]{len(results.dropouts)} late, failed or rejected bank "
                      "answers were skipped (see results.json 'dropouts' and audit.jsonl)[/]")
    if results.trees is not None and results.trees.early_stopping_rounds:
        console.print(f"early stopping kept {results.trees.trees_kept} of at most "
                      f"{results.trees.trees} trees (best pooled validation "
                      f"{results.trees.early_stopping_metric or 'logloss'})")
    if results.trees is not None and results.trees.same_trees_as_centralized is not None:
        same = results.trees.same_trees_as_centralized
        console.print(f"federated trees {'equal' if same else '[red]differ from[/]'} the pooled "
                      f"trees (largest test-margin gap {_n(results.trees.max_prediction_gap):.2e})")
    console.print(f"federated - centralised AUC: {_n(fed.auc) - _n(cen.auc):+.4f}; "
                  f"wall time {_n(results.wall_seconds):.1f} s; results: {path}")


def _local_summary_rows(table: Table, summary: LocalSummary) -> None:
    """Rows of the local-only models' spread and of the banks that gain from federating."""
    for label, pick in (("min", "low"), ("median", "middle"), ("max", "high")):
        auc = getattr(summary.auc, pick) if summary.auc else None
        ks = getattr(summary.ks, pick) if summary.ks else None
        table.add_row(f"local-only {label} of {summary.banks} banks", f"{_n(auc):.4f}",
                      f"{_n(ks):.4f}")
    share = "" if summary.gaining_share is None else f" ({summary.gaining_share:.0%})"
    table.add_row(f"banks gaining from federation: {summary.gaining} of {summary.compared}"
                  f"{share}", "", "")


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``resume`` to ``app``."""
    app.command("simulate", help=help_text(simulate.__doc__))(simulate)
    app.command("resume", help=help_text(resume.__doc__))(resume)
