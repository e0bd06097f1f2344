"""``fedcredit audit wire``: check a recorded wire transcript for anything of a data file.

Every value of every message in ``RUN/wire.jsonl`` is checked against the allow-list
(:mod:`federation.wire.allowlist`) and searched for the file's labels, feature values and IDs
(:mod:`fedcredit.audit_wire.search`). Runs where the data is: a bank runs it on its own
transcript and file, the researcher of a simulation on the run's transcript and the data set.

Security: a clean scan is evidence, not proof: it finds the encodings it knows (listed in
:mod:`fedcredit.audit_wire.search`) of the rows it is given; an encrypted or masked leak,
or a leak of a few cells, is outside what any content scan can see. A finding names the
transcript line, message, record, key and what matched (encoding, row order, rows or
columns), never a value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fedcredit.audit_wire import search
from fedcredit.audit_wire.orders import party_orders
from fedcredit.audit_wire.targets import LeakTargets, build_targets, load_data, run_preprocessors
from federation.data.table import CreditTable
from federation.errors import RunFolderError
from federation.run.folder import RunFolder
from federation.wire.allowlist import ALLOW_LIST, Allowed, refusal
from federation.wire.transcript import WireValue, read_transcript

PRINTABLE_TEXT = 0.8  # share of printable ASCII above which a payload is searched as text
_PRINTABLE = frozenset(range(32, 127)) | {9, 10, 13}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: where (transcript line, message, record, key) and what."""

    line: int
    message_type: str
    direction: str
    node: int
    record: str
    key: str
    what: str

    def describe(self) -> str:
        """The one line ``fedcredit audit wire`` prints."""
        return (f"line {self.line} {self.message_type} ({self.direction}, node {self.node}) "
                f"{self.record}/{self.key}: {self.what}")


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What a scan checked and found."""

    findings: tuple[Finding, ...]
    messages: int
    values: int
    payload_bytes: int
    rows: int
    columns: int
    orders: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """No finding."""
        return not self.findings

    def summary(self) -> str:
        """One line: what was checked."""
        return (f"{self.messages} messages, {self.values} values, {self.payload_bytes} bytes "
                f"checked against the allow-list and searched for the labels, {self.columns} "
                f"numeric columns and IDs of {self.rows} rows in {len(self.orders)} row orders "
                f"({'; '.join(self.orders)})")


def _printable(raw: bytes) -> bool:
    sample = raw[:65536]
    return bool(sample) and sum(b in _PRINTABLE for b in sample) >= PRINTABLE_TEXT * len(sample)


def _numeric_findings(raw: bytes, targets: LeakTargets) -> list[str]:
    found: list[str] = []
    for encoding, values in search.numeric_views(raw):
        order = search.label_match(values, targets)
        if order:
            found.append(f"labels as {encoding} ({order})")
        if encoding in ("float64", "float32", "int64", "int32") and search.feature_match(
                values, targets, single=encoding == "float32",
                counts=encoding in ("int64", "int32")):
            found.append(f"feature values as {encoding}")
        if encoding in ("int64", "int32") and search.id_match(values, targets):
            found.append(f"IDs as {encoding}")
    order = search.packed_label_match(raw, targets)
    if order:
        found.append(f"labels as packed bits ({order})")
    return found


def _text_findings(raw: bytes, targets: LeakTargets) -> list[str]:
    found: list[str] = []
    for form, text in search.text_forms(raw):
        if search.text_id_match(text, targets):
            found.append(f"IDs as {form} text")
        if not _printable(text):
            continue
        values, decimals, scaled = search.text_numbers(text)
        order = search.label_match(values, targets) or search.bit_string_labels(text, targets)
        if order:
            found.append(f"labels as {form} text ({order})")
        if search.id_match(values[values == values.round()], targets):
            found.append(f"IDs as {form} text")
        if search.text_feature_match(values, decimals, scaled, targets):
            found.append(f"feature values as {form} text")
    return found


def value_findings(value: WireValue, targets: LeakTargets) -> list[str]:
    """What of the data ``value`` holds (an empty list when nothing)."""
    found = _numeric_findings(value.raw, targets) + _text_findings(value.raw, targets)
    return list(dict.fromkeys(found))  # once each, in order


def scan_transcript(path: Path, targets: LeakTargets, *, rows: int,
                    allow: Iterable[Allowed] = ALLOW_LIST) -> ScanReport:
    """Check every value of the transcript at ``path`` (see the module docstring)."""
    allow = tuple(allow)
    findings: list[Finding] = []
    seen: dict[bytes, list[str]] = {}
    messages = values = size = 0
    for number, line in read_transcript(path):
        messages += 1
        for value in line.values:
            values += 1
            size += len(value.raw)
            what = []
            refused = refusal(line.type, value, allow)
            if refused:
                what.append(f"not allowed: {refused}")
            digest = hashlib.sha256(value.raw).digest()
            if digest not in seen:
                seen[digest] = value_findings(value, targets)
            what += seen[digest]
            findings += [Finding(number, line.type, line.direction, line.node, value.record,
                                 value.key, w) for w in what]
    return ScanReport(tuple(findings), messages, values, size, rows,
                      len(targets.columns), targets.orders)


def audit_wire(run: Path, data: Path, *, target: str | None = None,
               id_col: str | None = None) -> ScanReport:
    """Scan ``run``'s wire transcript for ``data``'s labels, feature values and IDs.

    Raises
    ------
    RunFolderError
        ``run`` holds no ``wire.jsonl`` (the run was not recorded with ``--record-wire``).
    """
    folder = RunFolder(run)
    if not folder.wire.exists():
        raise RunFolderError(f"{run} holds no wire transcript ({folder.wire.name}); record the "
                             "run with --record-wire.")
    table = _load(run, data, target=target, id_col=id_col)
    orders, preps = party_orders(run, table, data_path=str(data), target=table.target or None,
                                 id_col=id_col)
    targets = build_targets(orders, [*preps, *run_preprocessors(run)])
    return scan_transcript(folder.wire, targets, rows=table.n_rows)


def _load(run: Path, data: Path, *, target: str | None, id_col: str | None) -> CreditTable:
    """The data file with ``target`` as labels; without one, the run's own target when the file
    has it, else the file without labels (a credit center's file)."""
    from federation.data.embedded import find_embedded
    from protocols.errors import FedCreditError

    if target:
        return load_data(data, target=target, id_col=id_col)
    embedded = find_embedded(data)
    for guess in [*_run_targets(run), *([embedded.target] if embedded else [])]:
        try:
            return load_data(data, target=guess, id_col=id_col)
        except FedCreditError:
            continue
    return load_data(data, target=None, id_col=id_col)


def _run_targets(run: Path) -> list[str]:
    """Target columns the run folder names (checkpoint settings, vertical results)."""
    from federation.run.results import VerticalResults, read_results
    from protocols.errors import FedCreditError
    from server.checkpoint import load_checkpoint

    names = []
    try:
        names.append(load_checkpoint(run)[0].target)
    except (FedCreditError, OSError, ValueError):
        pass
    try:
        results = read_results(RunFolder(run).results)
        if isinstance(results, VerticalResults):
            names.append(str(dict(results.config).get("target", "")))
        else:
            names.append(results.target or "")
    except (FedCreditError, OSError, ValueError):
        pass
    return [n for n in names if n]
