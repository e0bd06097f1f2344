"""Progress of a long command: a live bar on a terminal, plain lines anywhere else.

On a terminal, :class:`RunProgress` draws one rich bar whose description follows the
stages (checking data, key ceremony, training, baselines) and whose counter follows rounds
or trees. When stdout is a file or a pipe (a log, CI, ``tee``) a live bar prints nothing
until the end, so it writes one plain line per stage and per evaluated round instead, each
flushed at once::

    stage: key ceremony
    round 3/10: AUC 0.7213 KS 0.3820 (4.1 s, 5 banks)
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class RoundLike(Protocol):
    """What a round (or tree) record tells: its number, AUC, KS and seconds."""

    @property
    def round(self) -> int: ...
    @property
    def auc(self) -> float: ...
    @property
    def ks(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def banks(self) -> int: ...


class RunProgress:
    """One run's progress: :meth:`stage`, :meth:`round`, :meth:`advance`.

    Parameters
    ----------
    console : rich.console.Console
        Where a terminal bar is drawn; its ``is_terminal`` picks the bar or plain lines.
    total : int
        Rounds (or trees) planned.
    unit : str
        ``"round"`` or ``"tree"``, for the lines.
    done : int
        Rounds already done (a resumed run).
    stream : TextIO, optional
        Where plain lines go (default ``sys.stdout``).
    """

    def __init__(self, console: Console, *, total: int, unit: str, done: int = 0,
                 stream: TextIO | None = None) -> None:
        self.total, self.unit = total, unit
        self._stream = stream
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._console = console
        self._done = done
        self._stage, self._tenth = "", 0

    @property
    def live(self) -> bool:
        """Whether a live bar is drawn (stdout is a terminal)."""
        return self._bar is not None

    def _line(self, text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def __enter__(self) -> RunProgress:
        if self._console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                 console=self._console)
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=self.total, completed=self._done,
                                            info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def stage(self, name: str) -> None:
        """A new stage of the run (preparation, training, baselines)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=name)
        else:
            self._line(f"stage: {name}")

    def round(self, rec: RoundLike) -> None:
        """A round (or tree count) was evaluated."""
        info = f"{self.unit} {rec.round}: AUC {rec.auc:.4f} KS {rec.ks:.4f}"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=f"federated {self.unit}s", info=info)
        else:
            self._line(f"{self.unit} {rec.round}/{self.total}: AUC {rec.auc:.4f} KS {rec.ks:.4f} "
                       f"({rec.seconds:.1f} s, {rec.banks} banks)")

    def advance(self, done: int) -> None:
        """``done`` rounds (or trees) are finished (moves the bar; no line of its own)."""
        self._done = done
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, description=f"federated {self.unit}s")

    def steps(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` steps of a stage (vertical: setup, PSI, batches, trees): the
        bar, or a line when the stage starts and at every further tenth of it."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=stage, completed=done, total=total)
            return
        tenth = 10 * done // max(total, 1)
        if stage != self._stage or tenth > self._tenth:
            self._line(f"{stage}: {done}/{total}")
        self._stage, self._tenth = stage, tenth
