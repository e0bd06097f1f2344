"""Credit analytics commands of ``fedcredit``: ``score``, ``report`` and ``export-scorecard``.

``register(app)`` adds them to the main typer app (``fedcredit.cli.main``). Each command is a thin
wrapper: it builds the scorecard scale and grades from the options, calls one function in
``federation.scorecard.scoring``, ``federation.scorecard.linear`` or ``fedcredit.report.html``, and prints a short
summary. Expected failures raise ``FedCreditError`` subclasses, which ``fedcredit.cli.main.main`` turns
into one red line and exit code 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from federation.ml.credit_metrics import PSI_SHIFTED, PSI_STABLE
from federation.scorecard.scale import DEFAULT_CUTOFFS, RiskGrades, ScorecardScale

console = Console()

_CUTOFFS = ",".join(f"{c:g}" for c in DEFAULT_CUTOFFS)
BASE_SCORE = typer.Option(600.0, "--base-score", help="Score at the base odds.")
BASE_ODDS = typer.Option(50.0, "--base-odds",
                         help="Good:bad odds at the base score (50 means 50:1).")
PDO = typer.Option(20.0, "--pdo", help="Points to double the good:bad odds.")
GRADE_CUTOFFS = typer.Option(
    _CUTOFFS, "--grades",
    help="Lowest score of each grade, best first, comma-separated: grades A, B, ... and one "
         "more grade below the last cut-off.")


def scale_and_grades(base_score: float, base_odds: float, pdo: float,
                     cutoffs: str) -> tuple[ScorecardScale, RiskGrades]:
    """Validated scale and grades from the command-line options (ConfigError otherwise)."""
    return ScorecardScale(base_score, base_odds, pdo), RiskGrades.parse(cutoffs)


def _in_sample_caveat(run_dir: Path, data: Path, out_of_sample: bool) -> str:
    """Why the metrics on ``data`` may be optimistic ("" when the caller vouches for them)."""
    from federation.errors import FedCreditError
    from federation.run.folder import RunFolder
    from federation.run.results import HorizontalResults, read_results

    try:
        results = read_results(RunFolder(run_dir).results)
    except (FedCreditError, OSError):
        results = None
    dataset = results.dataset if isinstance(results, HorizontalResults) else None
    if dataset is not None and _same_file(dataset, data):
        return ("this is the run's own data set: the rows the model trained on are among "
                "them, so these figures are optimistic. The run's held-out AUC is in its "
                "results.json and report; score a file of rows the model never saw.")
    if out_of_sample:
        return ""
    return ("these figures count every labelled row of the file; any row the model trained on "
            "makes them optimistic. Pass --out-of-sample when the file holds only rows the "
            "model never saw.")


def _same_file(dataset: str, data: Path) -> bool:
    """Whether the run's ``dataset`` (a path or an embedded name) is the scored ``data``."""
    from federation.data.embedded import find_embedded

    if find_embedded(dataset) is not None or find_embedded(str(data)) is not None:
        return str(dataset) == str(data)
    try:
        return Path(dataset).resolve() == data.resolve()
    except OSError:
        return False


def _psi_words(psi: float) -> str:
    if psi < PSI_STABLE:
        return "stable"
    return "some shift" if psi < PSI_SHIFTED else "significant shift: check the population"


def score(
    model: Path = typer.Option(..., "--model", help="Run folder written by `fedcredit simulate "
                               "--out DIR` (model.npz, or model.json for boosted trees, "
                               "preprocessor.json, results.json)."),
    data: Path = typer.Option(..., "--data", help="CSV of entities to score; needs the model's "
                              "feature columns (extra columns and the target are optional); "
                              "or an embedded data set: uci, german."),
    out: Path = typer.Option(..., "--out", help="Output CSV: id, probability, score, grade, "
                             "reason_1..reason_K."),
    id_col: str | None = typer.Option(None, "--id-col", help="ID column of --data (default: "
                                         "the run's ID column, a column named 'id', or row numbers)."),
    reasons: int = typer.Option(3, "--reasons", min=0, help="Reason codes per row (LR and trees; "
                                "none for the MLP)."),
    out_of_sample: bool = typer.Option(False, "--out-of-sample", help="The file holds only rows "
                                       "the model never trained on: its AUC, Gini and Brier "
                                       "are then printed as out-of-sample figures (without it "
                                       "they come with a warning that they may be optimistic)."),
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO,
    grades: str = GRADE_CUTOFFS,
) -> None:
    """Score a file with a trained model: P(default), points, grade and reason codes per row.

    Checks the file's columns against the model's schema first. Reason codes name the features
    that lowered each entity's score most: for LR against a typical applicant, for boosted trees
    (--model gbdt runs) by Saabas contributions, the change of the expected value at each split
    on the row's path credited to the split's feature (none for the MLP). If the
    file has the target column, prints the default rate per grade and the AUC (labelled
    out-of-sample only with --out-of-sample, and never for the run's own data file, whose rows
    include the training rows); it also prints the population stability index of the scores
    against the run's test scores.
    """
    from federation.scorecard.scoring import score_file

    scale, risk = scale_and_grades(base_score, base_odds, pdo, grades)
    summary = score_file(model, data, out, scale=scale, grades=risk, reasons=reasons,
                         id_col=id_col or "")
    table = Table(title=f"{summary.rows:,} rows scored -> {summary.output}")
    for column in ("grade", "score", "rows", "share", "default rate"):
        table.add_column(column, justify="left" if column == "grade" else "right")
    for g in summary.grades:
        band = (f">= {g.min_score:g}" if math.isinf(g.max_score) else
                f"< {g.max_score:g}" if math.isinf(g.min_score) else f"{g.min_score:g}-{g.max_score:g}")
        rate = "" if math.isnan(g.default_rate) else f"{g.default_rate:.1%}"
        table.add_row(g.grade, band, f"{g.count:,}", f"{g.share:.1%}", rate)
    console.print(table)
    if summary.auc is not None and summary.brier is not None:
        caveat = _in_sample_caveat(model, data, out_of_sample)
        label = "in-sample risk" if caveat else "out of sample"
        console.print(f"on this file's labels ({label}): AUC {summary.auc:.4f}, Gini "
                      f"{2 * summary.auc - 1:.4f}, Brier {summary.brier:.4f}")
        if caveat:
            console.print(f"[yellow]warning:[/] {caveat}", highlight=False)
    if summary.psi_vs_development is not None:
        psi = summary.psi_vs_development
        console.print(f"PSI vs the run's test scores: {psi:.4f} ({_psi_words(psi)})")
    console.print(f"{summary.rows / max(summary.seconds, 1e-9):,.0f} rows/s "
                  f"({summary.seconds:.2f} s including reading and writing)")


def report(
    run_dir: Path = typer.Argument(..., help="Run folder of `fedcredit simulate`, `fedcredit "
                                   "vertical`, `fedcredit deploy` or the local launcher (its "
                                   "--out folder, holding results.json)."),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default: RUN_DIR/report.html)."),
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO,
    grades: str = GRADE_CUTOFFS,
) -> None:
    """Write one self-contained HTML validation report of a run (figures embedded, no
    external files), for horizontal, vertical and deployed runs alike.

    AUC/KS/Gini of every model under the CLI's names, with 95% intervals for the federated
    model (DeLong; stratified bootstrap) and a small-sample warning; ROC, KS, gains (CAP) and
    calibration figures; grades with bads and cumulative bad rates; approval and bad rate at
    each cut-off; calibration bands, Brier score and Hosmer-Lemeshow (on calibrated PDs where
    the run calibrated them); the model (LR coefficients and points, tree gain, IV); rounds,
    banks, the run's identity, settings and privacy mode. Every number comes from
    RUN_DIR/results.json (and, for an LR, the released model): no row is needed.
    """
    from fedcredit.report.html import write_report

    scale, risk = scale_and_grades(base_score, base_odds, pdo, grades)
    path = write_report(run_dir, out=out, scale=scale, grades=risk)
    console.print(f"report written: {path}")


def export_scorecard(
    model: Path = typer.Option(..., "--model", help="Run folder of a logistic-regression run "
                               "(`fedcredit simulate --model lr --out DIR`)."),
    out: Path | None = typer.Option(None, "--out", help="JSON file (default: "
                                       "MODEL/scorecard.json)."),
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO,
    grades: str = GRADE_CUTOFFS,
) -> None:
    """Export the trained LR as a plain JSON points scorecard usable without fedcredit.

    Per numeric feature: mean, std, clip, coefficient and points per standard deviation; per
    category: coefficient and points; base points, scaling and grade cut-offs. The JSON holds
    a stdlib-only Python recipe ("python_recipe") that scores a CSV row with it.
    """
    from federation.run.folder import RunFolder
    from federation.scorecard.scoring import load_run_model

    scale, risk = scale_and_grades(base_score, base_odds, pdo, grades)
    card = load_run_model(model).scorecard(scale, risk)
    path = out or RunFolder(model).scorecard
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card.to_json() + "\n", encoding="utf-8")
    console.print(f"scorecard written: {path} ({len(card.feature_names)} design features, "
                  f"base points {card.base_points:.2f})")


def help_text(doc: str | None) -> str:
    """A docstring as --help text: paragraphs kept, lines inside a paragraph joined."""
    paragraphs = (doc or "").strip().split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def register(app: typer.Typer) -> None:
    """Add ``score``, ``report`` and ``export-scorecard`` to ``app``.

    Usage in ``fedcredit/cli/main.py``: ``from fedcredit.cli.products import register`` then
    ``register(app)`` after ``app`` is created.
    """
    for name, command in (("score", score), ("report", report),
                          ("export-scorecard", export_scorecard)):
        app.command(name, help=help_text(command.__doc__))(command)
