"""A vertical launch ends as soon as a party's node exits (no process started here: the
launcher's supervisor is a stand-in that reports the exit)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.vertical_federation import PartyFolder, VerticalLocalFederation


class Supervisor:
    """Reports ``exits`` (party name -> status) and a failure note naming the log."""

    def __init__(self, exits: dict[str, int]) -> None:
        self.exits = exits

    def exited(self, name: str) -> int | None:
        return self.exits.get(name)

    def failure_note(self, name: str) -> str:
        return f"last error: target column 'default' not found; log: logs/{name}.log"


def launcher(tmp_path: Path, exits: dict[str, int]) -> SimpleNamespace:
    parties = [PartyFolder(role, tmp_path / role) for role in ("bank", "center")]
    return SimpleNamespace(banks=parties, sup=Supervisor(exits))


def test_a_party_node_that_exits_ends_the_launch_naming_the_party(tmp_path: Path) -> None:
    fed = launcher(tmp_path, {"bank-0": 1})
    with pytest.raises(DeploymentError) as err:
        VerticalLocalFederation._note_exits(fed)  # type: ignore[arg-type]
    text = str(err.value)
    assert "the bank node exited (status 1)" in text and "needs both parties" in text
    assert "target column 'default' not found" in text and "logs/bank-0.log" in text


def test_running_parties_let_the_launch_go_on(tmp_path: Path) -> None:
    VerticalLocalFederation._note_exits(launcher(tmp_path, {}))  # type: ignore[arg-type]
