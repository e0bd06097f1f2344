"""``fedcredit models``: the credit query service's model registry (promote, list).

``fedcredit models promote RUN_DIR --name NAME`` records a run's LR (a ``fedcredit simulate``
LR run folder, or a ``scorecard.json``) as the next numbered version and makes it the one
``fedcredit serve`` loads (a running service switches to it within ``reload-seconds``). A
vertical model is promoted by each party with the columns the credit center holds: the bank
with ``--part bank``, the center with ``--part center``; each registry keeps its own part only
(thin over :mod:`fedcredit.service.registry`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fedcredit.cli.products import BASE_ODDS, BASE_SCORE, GRADE_CUTOFFS, PDO, scale_and_grades

console = Console()
models_app = typer.Typer(help="Model registry of the credit query service (fedcredit serve).",
                         no_args_is_help=True, add_completion=False)
REGISTRY = typer.Option(Path("registry"), "--registry", help="The institution's registry folder ('\\[service] registry').")


@models_app.command("promote")
def promote(
    run_dir: Path = typer.Argument(..., help="A `fedcredit simulate` LR run folder, or a scorecard.json (`fedcredit export-scorecard`)."),
    name: str = typer.Option(..., "--name", help="Model name ('\\[service] model')."),
    registry: Path = REGISTRY,
    part: str = typer.Option("whole", "--part", help="whole (served by the bank alone), bank or center (a vertical model's part)."),
    center_columns: str = typer.Option("", "--center-columns", help="Comma-separated columns the credit center holds (with --part bank/center)."),
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO,
    grades: str = GRADE_CUTOFFS,
) -> None:
    """Record a run's model as the next version of NAME and make it the served one."""
    from fedcredit.service.registry import ModelRegistry, read_scorecard

    scale, risk = scale_and_grades(base_score, base_odds, pdo, grades)
    card = read_scorecard(run_dir, scale=scale, grades=risk)
    columns = tuple(c.strip() for c in center_columns.split(",") if c.strip())
    served = ModelRegistry(registry).promote(card, name=name, part=part, source=str(run_dir),
                                             center_columns=columns)
    console.print(f"promoted {served.label} ({served.part} part, model id "
                  f"{served.model_id[:12]}) into {registry}", highlight=False, soft_wrap=True)


@models_app.command("list")
def list_versions(
    name: str = typer.Option(..., "--name", help="Model name."),
    registry: Path = REGISTRY,
) -> None:
    """The promoted versions of NAME; the served one is marked."""
    from fedcredit.service.registry import ModelRegistry

    reg = ModelRegistry(registry)
    versions = reg.versions(name)
    current = reg.current(name) if versions else None
    for version in versions:
        model = reg.load(name, version)
        mark = "*" if version == current else " "
        console.print(f"{mark} {model.label}  {model.part}  {model.promoted_at}  {model.source}",
                      highlight=False, soft_wrap=True)
    if not versions:
        console.print(f"no versions of '{name}' in {registry}")


def register(app: typer.Typer) -> None:
    """Add ``models`` to ``app``."""
    app.add_typer(models_app, name="models")
