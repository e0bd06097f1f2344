"""``[tool.flwr.app.config]`` in pyproject.toml is derived from the run settings' defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

from federation.run.app_config import app_config_defaults, render_toml
from federation.run.config import RunConfig
from federation.run.vertical_config import vertical_config_from_run_config

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["flwr"]["app"]["config"]


def test_pyproject_table_equals_the_dataclass_defaults() -> None:
    expected = app_config_defaults()
    assert declared() == expected, (
        "pyproject.toml [tool.flwr.app.config] is out of date; paste the output of "
        "`python -m federation.run.app_config`:\n" + render_toml(expected))


def test_every_run_setting_can_be_overridden_by_flwr_run() -> None:
    keys = set(declared())
    run_keys = set(RunConfig().to_user_config()) - {"schema-version"}
    assert run_keys <= keys  # flwr run refuses overrides of undeclared keys


def test_the_declared_table_parses_into_both_configs() -> None:
    table = declared()
    horizontal = RunConfig.from_user_config(table)
    assert horizontal.banks == RunConfig().banks and horizontal.id_col == "ID"
    vertical = vertical_config_from_run_config(table)
    assert vertical.bank_data == "" and vertical.epochs == 5


def test_rendered_toml_round_trips() -> None:
    values = app_config_defaults()
    assert tomllib.loads(render_toml(values)) == values
