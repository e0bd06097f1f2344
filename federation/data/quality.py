"""Data quality report of one node's file (runs on the node; nothing leaves it).

Used by ``fedcredit check`` and before a node joins a federation. Blocking problems (the file
cannot be loaded, invalid unified social credit codes in a USCC-keyed file) stop the node;
warnings (missing values, values far outside a column's usual range, negative values in a
column that is otherwise never negative) are reported and the node may go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from federation.data.cell_errors import CellError
from federation.data.table import CreditTable, load_credit_csv
from federation.data.uscc import find_invalid_codes
from federation.errors import DataError

EXTREME_IQR = 10.0
RANGE_MIN_VALUES = 20  # columns with fewer present values are not judged
NEGATIVE_SHARE = 0.01  # a negative value is out of range where negatives are rarer than this
MISSING_WARN = 0.2
USCC_SHARE = 0.5
RULES = (
    ("missing", f"a column with at least {MISSING_WARN:.0%} of its cells empty is a warning"),
    ("out of range", f"a numeric value more than {EXTREME_IQR:g} interquartile ranges below the "
                     "first or above the third quartile, or a negative value in a column whose "
                     f"values are otherwise at least {1 - NEGATIVE_SHARE:.0%} non-negative "
                     f"(columns of {RANGE_MIN_VALUES} values or more); a warning"),
    ("blocking", "the file cannot be loaded (format, target, ID column), or a file keyed by "
                 "unified social credit codes holds an invalid or repeated code"),
)
"""What ``fedcredit check`` calls each problem: ``(name, rule)``, printed with the report."""


@dataclass(frozen=True)
class ColumnQuality:
    """Quality figures of one feature column."""

    name: str
    kind: str
    missing_rate: float
    out_of_range: int = 0


@dataclass(frozen=True)
class QualityReport:
    """Everything ``fedcredit check`` prints."""

    source: str
    rows: int | None = None
    """Data rows; None when the file could not be loaded (see ``blocking``)."""
    bad_rate: float | None = None
    columns: tuple[ColumnQuality, ...] = ()
    invalid_ids: int = 0
    duplicate_ids: int = 0
    blocking: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when nothing blocks the node from joining."""
        return not self.blocking


def out_of_range_count(values: np.ndarray) -> int:
    """Values beyond 10 IQR from the quartiles, or negative where >= 99% are non-negative."""
    x = values[~np.isnan(values)]
    if x.size < RANGE_MIN_VALUES:
        return 0
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    extreme = ((x < q1 - EXTREME_IQR * iqr) | (x > q3 + EXTREME_IQR * iqr)) if iqr > 0 else \
        np.zeros(x.size, bool)
    negative = x < 0 if 0 < (x < 0).mean() < NEGATIVE_SHARE else np.zeros(x.size, bool)
    return int((extreme | negative).sum())


def id_problems(table: CreditTable) -> tuple[int, int, list[str]]:
    """(invalid USCCs, duplicates, blocking messages) for a USCC-keyed table."""
    if table.ids is None or np.mean([len(i) == 18 for i in table.ids]) < USCC_SHARE:
        return 0, 0, []
    found = find_invalid_codes(table.ids, report_duplicates=True)
    dup = sum(1 for _, _, reason in found if "repeat" in reason or "duplicate" in reason)
    invalid = len(found) - dup
    return invalid, dup, [str(_id_error(table.source, found))] if found else []


def _id_error(where: str, found: list[tuple[int, str, str]]) -> CellError:
    """The first invalid or repeated credit code as a :class:`CellError`: the code and the
    reason (which quotes its characters) are local detail, never in the public form."""
    row, code, reason = found[0]
    more = f"; {len(found)} problem IDs in all" if len(found) > 1 else ""
    return CellError(where, "ID", "{value} is not a valid unified social credit code (GB "
                     f"32100-2015){more}", position=row - 1, value=f"{code!r} ({reason})")


def quality_report(path: str | Path, *, target: str, id_col: str | None = None) -> QualityReport:
    """Load the file and measure it; a load failure becomes the (only) blocking problem."""
    try:
        table = load_credit_csv(path, target=target, id_col=id_col)
    except DataError as exc:
        return QualityReport(str(path), blocking=(str(exc),))
    return report_for(table)


def report_for(table: CreditTable) -> QualityReport:
    """Quality figures of an already loaded table."""
    columns = [ColumnQuality(c, "numeric", float(np.isnan(table.numeric[c]).mean()),
                             out_of_range_count(table.numeric[c].to_numpy(dtype=float)))
               for c in table.numeric.columns]
    columns += [ColumnQuality(c, "categorical", float(table.categorical[c].isna().mean()))
                for c in table.categorical.columns]
    invalid, dup, blocking = id_problems(table)
    warnings = [f"column '{c.name}' is {c.missing_rate:.0%} missing" for c in columns
                if c.missing_rate >= MISSING_WARN]
    warnings += [f"column '{c.name}' has {c.out_of_range} out-of-range values" for c in columns
                 if c.out_of_range]
    warnings += [f"text column '{c}' ignored: every value is distinct" for c in table.dropped]
    bad_rate = float(table.y.mean()) if table.labelled else None
    return QualityReport(table.source, table.n_rows, bad_rate, tuple(columns),
                         invalid, dup, tuple(blocking), tuple(warnings))


def assert_ready(table: CreditTable) -> None:
    """Before joining a federation: raise DataError on any blocking problem."""
    report = report_for(table)
    if not report.ok:
        found = find_invalid_codes(table.ids, report_duplicates=True) \
            if table.ids is not None else []
        if found:
            raise _id_error(table.source, found)
        raise DataError(report.blocking[0])
