"""``fedcredit models``: the credit query service's model registry (promote, list).

``fedcredit models promote RUN_DIR --name NAME`` records a run's LR (a ``fedcredit simulate``
LR run folder, or a ``scorecard.json``) as the next numbered version and makes it the one
``fedcredit serve`` loads (a running service switches to it within ``reload-seconds``). A
vertical model is promoted by each party with the columns the credit center holds: the bank
with ``--part bank``, the center with ``--part center``; each registry keeps its own part only
(thin over :mod:`fedcredit.service.registry`). Given a ``fedcredit vertical`` run folder (or a
party's own model folder), ``--part bank|center`` promotes the part that party's node wrote
(:mod:`federation.run.vertical_part`); no ``--center-columns`` needed. A ``fedcredit vertical --model secureboost`` run
is promoted the same way: each party's node wrote its part of the trees
(:mod:`federation.run.tree_part`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from fedcredit.cli.products import BASE_ODDS, BASE_SCORE, GRADE_CUTOFFS, PDO, scale_and_grades

if TYPE_CHECKING:
    from fedcredit.service.registry import ModelRegistry, ServedModel
    from federation.scorecard.scale import RiskGrades, ScorecardScale

console = Console()
models_app = typer.Typer(help="Model registry of the credit query service (fedcredit serve).",
                         no_args_is_help=True, add_completion=False)
REGISTRY = typer.Option(Path("registry"), "--registry", help="The institution's registry folder ('\\[service] registry').")


@models_app.command("promote")
def promote(
    run_dir: Path = typer.Argument(..., help="A `fedcredit simulate` LR run folder, a scorecard.json (`fedcredit export-scorecard`), or with --part bank/center a `fedcredit vertical` run folder, LR or SecureBoost (or a party's own model folder)."),
    name: str = typer.Option(..., "--name", help="Model name ('\\[service] model')."),
    registry: Path = REGISTRY,
    part: str = typer.Option("whole", "--part", help="whole (served by the bank alone), bank or center (a vertical model's part)."),
    center_columns: str = typer.Option("", "--center-columns", help="Comma-separated columns the credit center holds (with --part bank/center)."),
    base_score: float = BASE_SCORE, base_odds: float = BASE_ODDS, pdo: float = PDO,
    grades: str = GRADE_CUTOFFS,
) -> None:
    """Record a run's model as the next version of NAME and make it the served one."""
    from fedcredit.service.registry import ModelRegistry, read_scorecard
    from federation.errors import ConfigError
    from federation.run.tree_part import find_tree_part, read_tree_part
    from federation.run.vertical_part import find_part

    scale, risk = scale_and_grades(base_score, base_odds, pdo, grades)
    columns = tuple(c.strip() for c in center_columns.split(",") if c.strip())
    vertical = find_part(run_dir, part) if part in ("bank", "center") else None
    trees = find_tree_part(run_dir, part) if part in ("bank", "center") else None
    if trees is not None:  # a SecureBoost run: this party's part of the trees
        held = read_tree_part(trees)
        if held.role != part:
            raise ConfigError(f"{trees} holds the {held.role}'s part, not the {part}'s; pass "
                              f"--part {held.role}.")
        served = ModelRegistry(registry).promote_trees(
            held.part, name=name, model_id=held.model_id, source=str(run_dir), scale=scale,
            grades=risk)
    elif vertical is not None:  # a vertical run: this party's own part, as its node wrote it
        served = _promote_vertical_part(vertical, ModelRegistry(registry), name=name,
                                        part=part, source=str(run_dir), scale=scale,
                                        risk=risk, columns=columns)
    else:
        card = read_scorecard(run_dir, scale=scale, grades=risk)
        served = ModelRegistry(registry).promote(card, name=name, part=part,
                                                 source=str(run_dir), center_columns=columns)
    console.print(f"promoted {served.label} ({served.part} part, model id "
                  f"{served.model_id[:12]}) into {registry}", highlight=False, soft_wrap=True)


def _promote_vertical_part(path: Path, registry: ModelRegistry, *, name: str, part: str,
                           source: str, scale: ScorecardScale, risk: RiskGrades,
                           columns: tuple[str, ...]) -> ServedModel:
    """A vertical run's part (``fedcredit vertical``: each party's node wrote its own)."""
    from federation.errors import ConfigError
    from federation.run.vertical_part import read_part

    held = read_part(path)
    if held.role != part:
        raise ConfigError(f"{path} holds the {held.role}'s part, not the {part}'s; pass "
                          f"--part {held.role}.")
    card = held.scorecard(scale, risk)
    if part == "center" and not columns:
        columns = tuple(dict.fromkeys(
            [*held.preprocessor.numeric, *(c for c, _ in held.preprocessor.categorical)]))
    return registry.promote_part(card, name=name, part=part, model_id=held.model_id,
                                 source=source, center_columns=columns)


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
