"""Progress: a live bar on a terminal, one flushed plain line per stage and round elsewhere."""

from __future__ import annotations

import io
from dataclasses import dataclass

from rich.console import Console

from fedcredit.cli.progress import RunProgress


@dataclass(frozen=True)
class _Round:
    round: int
    auc: float
    ks: float
    seconds: float
    banks: int


class _Flushes(io.StringIO):
    """Counts flushes: a line must leave at once, not when the run ends."""

    flushed = 0

    def flush(self) -> None:
        self.flushed += 1
        super().flush()


def test_not_a_terminal_gets_one_plain_line_per_stage_and_round() -> None:
    stream = _Flushes()
    with RunProgress(Console(file=io.StringIO()), total=3, unit="tree", stream=stream) as p:
        assert not p.live
        p.stage("key ceremony")
        p.advance(1)
        p.round(_Round(2, 0.71234, 0.3, 4.25, 5))
    lines = stream.getvalue().splitlines()
    assert lines == ["stage: key ceremony",
                     "tree 2/3: AUC 0.7123 KS 0.3000 (4.2 s, 5 banks)"]
    assert stream.flushed == 2


def test_steps_print_a_line_per_stage_and_per_tenth() -> None:
    stream = io.StringIO()
    with RunProgress(Console(file=io.StringIO()), total=1, unit="step", stream=stream) as p:
        p.steps("psi", 0, 1)
        for done in range(1, 101):
            p.steps("batch", done, 100)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "psi: 0/1" and lines[1] == "batch: 1/100" and lines[-1] == "batch: 100/100"
    assert len(lines) == 2 + 10


def test_a_terminal_gets_the_live_bar_and_no_plain_lines() -> None:
    stream, screen = io.StringIO(), io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with RunProgress(console, total=3, unit="round", stream=stream) as p:
        assert p.live
        p.stage("checking data")
        p.round(_Round(1, 0.7, 0.3, 1.0, 3))
        p.advance(1)
    assert stream.getvalue() == ""
    assert "round 1: AUC 0.7000" in screen.getvalue()
