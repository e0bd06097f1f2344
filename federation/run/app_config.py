"""The Flower app's run config (``[tool.flwr.app.config]`` in ``pyproject.toml``), derived.

``flwr run`` only lets a run override keys that ``pyproject.toml`` declares, and gives the app
the declared value of every other key. That table is therefore not a second source of
defaults: it must equal :func:`app_config_defaults`, which is built from the dataclasses'
defaults (:class:`~federation.run.config.RunConfig`,
:class:`~federation.run.vertical_config.VerticalConfig`) plus the few values that differ for
``flwr run`` on purpose (:data:`FLWR_RUN_OVERRIDES`). ``tests/federation/test_app_config.py``
checks the two agree; ``python -m federation.run.app_config`` prints the table to paste.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.run.config import MODE_KEY, RunConfig
from federation.run.vertical_config import VerticalConfig, vertical_run_config

FLWR_RUN_OVERRIDES: dict[str, Any] = {
    "id-col": "ID",  # the default data set's key column, named (the CLI detects it)
    "out": "runs/flwr-run",  # a run folder of its own, apart from `fedcredit simulate`'s
}
"""Horizontal settings whose ``flwr run`` value differs from the dataclass default, and why."""

FLWR_VERTICAL_OVERRIDES: dict[str, Any] = {
    "bank_data": "",  # each deployed party reads its own file from its node config
    "center_data": "",
    "out": "runs/flwr-vertical",
}
"""Vertical settings (field names) whose ``flwr run`` value differs from the default."""

NOT_IN_APP_CONFIG = ("schema-version",)
"""Keys every node fills in itself (the build's own schema version)."""


def app_config_defaults() -> dict[str, Any]:
    """Every key of ``[tool.flwr.app.config]`` with the value it must have."""
    horizontal = {k: v for k, v in RunConfig().to_user_config().items()
                  if k not in NOT_IN_APP_CONFIG}
    horizontal.update(FLWR_RUN_OVERRIDES)
    vertical = vertical_run_config(replace(VerticalConfig(), **FLWR_VERTICAL_OVERRIDES))
    vertical[MODE_KEY] = "horizontal"
    return {**horizontal, **vertical}


def render_toml(values: dict[str, Any]) -> str:
    """The table as TOML lines (str, int, float and bool values)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)
    return "\n".join(f"{k} = {value(v)}" for k, v in values.items()) + "\n"


if __name__ == "__main__":
    print("[tool.flwr.app.config]")
    print(render_toml(app_config_defaults()), end="")
