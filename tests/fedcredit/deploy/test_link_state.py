"""Where the launcher's SuperLink keeps its state, without starting a process: a vertical launch
runs it in memory (no ``--database``: a vertical run has no checkpoint to resume), a horizontal
one on ``OUT/superlink/state.db`` (what ``--resume`` after a SuperLink crash needs); either is
chosen explicitly with ``link_state``, which ``launch.json`` keeps for a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.flower_commands import superlink_command
from fedcredit.deploy.launch_plan import LaunchOptions, Layout, load_launch, save_launch
from fedcredit.deploy.local_federation import LocalFederation
from fedcredit.deploy.vertical_federation import VerticalLocalFederation


def options(out: Path, mode: str, **changes: Any) -> LaunchOptions:
    return LaunchOptions(**{"banks": 2, "out": out, "data_path": "german", "target": "bad",
                            "mode": mode, **changes})


def database_flag(launcher: LocalFederation) -> str | None:
    cmd = superlink_command(launcher.link_settings())
    return cmd[cmd.index("--database") + 1] if "--database" in cmd else None


def test_a_vertical_launch_keeps_the_superlink_in_memory(tmp_path: Path) -> None:
    launcher = VerticalLocalFederation(options(tmp_path / "v", "vertical"))
    assert launcher.opt.link_in_memory
    assert database_flag(launcher) is None
    assert launcher.link_state_existed is False


def test_a_horizontal_launch_keeps_the_superlink_state_in_a_file(tmp_path: Path) -> None:
    out = tmp_path / "h"
    launcher = LocalFederation(options(out, "horizontal"))
    assert not launcher.opt.link_in_memory
    assert database_flag(launcher) == str(Layout(out.resolve()).link_database)


@pytest.mark.parametrize(("mode", "state", "in_memory"), [
    ("vertical", "file", False), ("horizontal", "memory", True)])
def test_the_link_state_can_be_chosen_against_the_default(tmp_path: Path, mode: str, state: str,
                                                          in_memory: bool) -> None:
    kind = VerticalLocalFederation if mode == "vertical" else LocalFederation
    launcher = kind(options(tmp_path / "run", mode, link_state=state))
    assert launcher.opt.link_in_memory is in_memory
    assert (database_flag(launcher) is None) is in_memory


def test_a_resume_keeps_the_first_launchs_link_state(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    layout = Layout(out.resolve())
    save_launch(options(out, "horizontal", link_state="memory"), layout)
    layout.checkpoint.parent.mkdir(parents=True)
    layout.checkpoint.write_text("{}")
    resumed = load_launch(out)
    assert resumed.resume and resumed.link_in_memory


def test_an_unknown_link_state_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="--link-state is 'disk'; choose file or memory"):
        options(tmp_path, "vertical", link_state="disk")
