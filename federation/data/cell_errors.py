"""Data errors that may leave a node: file role, column, row and rule, never a value or path.

Protocol step: a bank loads and checks its own file when the coordinator's first request
arrives; an error there becomes the bank's reply, which reaches the coordinator and the
operator's console. Security assumption: everything in that reply is disclosed to the
coordinator, so it names the file by its role (``the bank's data file``), the column, the
row number and the rule broken, and nothing read from a cell (an ID, an amount, a label
spelling) or the bank's local path. The full message, with the value and the path, is
logged on the bank's own machine only (:func:`wire_safe`).

:class:`CellError` keeps the parts apart so both forms come from one place;
:func:`wire_safe` turns any :class:`~federation.errors.DataError` into the public form.
"""

from __future__ import annotations

import logging
from pathlib import Path

from federation.errors import DataError

BANK_FILE_ROLE = "the bank's data file"
"""How a bank's reply names its own file."""
LOG = logging.getLogger("fedcredit.data")


def row_ref(position: int) -> str:
    """Human row reference: 1-based data row and the file line it sits on (header is line 1)."""
    return f"row {position + 1} (line {position + 2})"


class CellError(DataError):
    """A rule broken at one column (and row) of a data file.

    ``str()`` is the local message (file path, column, row, rule and, where it helps, the
    offending value); :meth:`public` is the same without the value and with the file named by
    its role, for anything that leaves the node.

    Parameters
    ----------
    where : str
        The file as the local operator knows it (path or embedded name).
    column : str
        Column name (a header, not data).
    rule : str
        The rule broken, with counts only; ``{value}`` marks where the local message shows
        the value (e.g. ``"value {value} is not a number (3 such values)"``).
    position : int or None
        0-based data row; None for a rule about the whole column.
    value : str
        The offending cell text as shown locally (already quoted); never in :meth:`public`.
    advice : str
        What to do (a sentence; no data).
    """

    def __init__(self, where: str, column: str, rule: str, *, position: int | None = None,
                 value: str = "", advice: str = "") -> None:
        self.where, self.column, self.rule, self.position = where, column, rule, position
        self.value, self.advice = value, advice
        super().__init__(self._text(where, rule.replace("{value}", value[:80])))

    def _text(self, where: str, rule: str) -> str:
        at = f"column '{self.column}'" + (f", {row_ref(self.position)}"
                                          if self.position is not None else "")
        advice = f" {self.advice}" if self.advice else ""
        return f"{where}: {at}: {rule}.{advice}"

    def public(self, role: str = BANK_FILE_ROLE) -> str:
        """The message without the value, the file named by ``role``."""
        return self._text(role, self.rule.replace(" {value}", "").replace("{value}", ""))


def wire_safe(exc: DataError, path: str | Path, role: str = BANK_FILE_ROLE) -> DataError:
    """The form of ``exc`` that may leave the node; logs the full message locally.

    A :class:`CellError` gives its :meth:`~CellError.public` text; any other data error has
    every spelling of ``path`` replaced by ``role`` (their texts hold no cell values).
    Returns a new :class:`DataError` (raise it ``from None``: a chained original would carry
    the detail along in a traceback).
    """
    LOG.error("%s", exc)  # the bank's own log: the full detail stays on its machine
    if isinstance(exc, CellError):
        return DataError(exc.public(role))
    text = str(exc)
    spellings = {str(path), str(Path(path).resolve()), str(Path(path).expanduser())}
    for spelling in sorted(spellings, key=len, reverse=True):
        if spelling:
            text = text.replace(spelling, role)
    return DataError(text)
