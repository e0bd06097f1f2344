"""The wire transcript (``RUN/wire.jsonl``): every message a node sees, one JSON line each.

Protocol step: none; this is evidence about the steps. A node records every request it gets
(``direction = "to-node"``) and every reply it sends (``"to-coordinator"``), at its own
boundary, so a bank's transcript holds exactly what left and reached that bank. One line::

    {"direction": "to-node", "node": 123, "round": 2, "type": "train",
     "records": [{"record": "sealed", "kind": "config", "key": "payload", "dtype": "bytes",
                  "shape": [40960], "b64": "..."}, ...]}

``b64`` is the base64 of the raw bytes of the value: an array's bytes (``tobytes()``, C order,
its own dtype), text as UTF-8, bytes as they are, an int as little-endian int64, a float as
little-endian float64, a bool as one byte; a list of ints as an int64 array, of floats as a
float64 array, of bools as bytes, of texts as their UTF-8 joined by newlines, of bytes
concatenated. ``shape`` is the array's shape, ``[len]`` for texts, bytes and lists, ``[]`` for
numbers.

Security: the transcript holds everything the node sent and received (ciphertexts, public
results, and, if the code leaked, the leak): it is as sensitive as the wire itself and stays
with the node that wrote it. :func:`line_to_json` / :func:`line_from_json` are the one codec.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord

from protocols.errors import MalformedMessageError

TO_NODE = "to-node"
TO_COORDINATOR = "to-coordinator"
DIRECTIONS = (TO_NODE, TO_COORDINATOR)
KIND_ARRAY = "array"
KIND_CONFIG = "config"
KIND_METRIC = "metric"
KINDS = (KIND_ARRAY, KIND_CONFIG, KIND_METRIC)
ROUND_FIELDS = ("round", "epoch")  # step-record fields naming the round (horizontal, vertical)


@dataclass(frozen=True, slots=True)
class WireValue:
    """One value of one record of a message: where it sits, its type and its raw bytes."""

    record: str
    kind: str
    key: str
    dtype: str
    shape: tuple[int, ...]
    raw: bytes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"record kind '{self.kind}' is not one of {KINDS}.")


@dataclass(frozen=True, slots=True)
class WireLine:
    """One message as one node saw it."""

    direction: str
    node: int
    round: int
    type: str
    values: tuple[WireValue, ...]

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction '{self.direction}' is not one of {DIRECTIONS}.")


def value_bytes(value: Any) -> tuple[str, tuple[int, ...], bytes]:
    """``(dtype, shape, raw bytes)`` of one ConfigRecord or MetricRecord value (module doc)."""
    if isinstance(value, bool):
        return "bool", (), bytes([value])
    if isinstance(value, int):
        return "int", (), np.int64(value).astype("<i8").tobytes()
    if isinstance(value, float):
        return "float", (), np.float64(value).astype("<f8").tobytes()
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return "str", (len(raw),), raw
    if isinstance(value, bytes):
        return "bytes", (len(value),), value
    if isinstance(value, list):
        return _list_bytes(value)
    raise TypeError(f"a record value of type {type(value).__name__} has no wire encoding.")


def _list_bytes(items: list[Any]) -> tuple[str, tuple[int, ...], bytes]:
    shape = (len(items),)
    if all(isinstance(v, bool) for v in items) and items:
        return "list[bool]", shape, bytes(int(v) for v in items)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return "list[int]", shape, np.asarray(items, dtype="<i8").tobytes()
    if all(isinstance(v, float) for v in items):
        return "list[float]", shape, np.asarray(items, dtype="<f8").tobytes()
    if all(isinstance(v, str) for v in items):
        return "list[str]", shape, "\n".join(items).encode("utf-8")
    if all(isinstance(v, bytes) for v in items):
        return "list[bytes]", shape, b"".join(items)
    raise TypeError("a record list mixes value types; it has no wire encoding.")


def message_values(msg: Message) -> tuple[WireValue, ...]:
    """Every value of every record of ``msg`` (none for a message without content)."""
    if not msg.has_content():
        return ()
    out: list[WireValue] = []
    for name, rec in msg.content.items():
        if isinstance(rec, ArrayRecord):
            for key, array in rec.items():
                nd = np.ascontiguousarray(array.numpy())
                out.append(WireValue(name, KIND_ARRAY, key, str(nd.dtype), tuple(nd.shape),
                                     nd.tobytes()))
        elif isinstance(rec, (ConfigRecord, MetricRecord)):
            kind = KIND_CONFIG if isinstance(rec, ConfigRecord) else KIND_METRIC
            for key, value in rec.items():
                dtype, shape, raw = value_bytes(value)
                out.append(WireValue(name, kind, key, dtype, shape, raw))
    return tuple(out)


def round_of(msg: Message) -> int | None:
    """The round a message's step record names (``round``, or a vertical run's ``epoch``, of
    any config record), if any."""
    if not msg.has_content():
        return None
    for field in ROUND_FIELDS:
        for rec in msg.content.config_records.values():
            value = rec.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def line_of(msg: Message, *, direction: str, node: int, round_index: int) -> WireLine:
    """The transcript line of ``msg`` as node ``node`` saw it."""
    return WireLine(direction, int(node), int(round_index), msg.metadata.message_type,
                    message_values(msg))


def line_to_json(line: WireLine) -> str:
    """One JSON line (no newline) in the format of the module docstring."""
    return json.dumps({
        "direction": line.direction, "node": line.node, "round": line.round, "type": line.type,
        "records": [{"record": v.record, "kind": v.kind, "key": v.key, "dtype": v.dtype,
                     "shape": list(v.shape), "b64": base64.b64encode(v.raw).decode("ascii")}
                    for v in line.values],
    }, separators=(",", ":"))


def line_from_json(text: str) -> WireLine:
    """Parse one transcript line; MalformedMessageError names what is missing or wrong."""
    try:
        obj = json.loads(text)
        values = tuple(
            WireValue(str(r["record"]), str(r["kind"]), str(r["key"]), str(r["dtype"]),
                      tuple(int(s) for s in r["shape"]),
                      base64.b64decode(r["b64"], validate=True))
            for r in obj["records"])
        return WireLine(str(obj["direction"]), int(obj["node"]), int(obj["round"]),
                        str(obj["type"]), values)
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedMessageError(
            f"a wire transcript line is malformed ({type(exc).__name__}: {exc}); record the "
            "run again with --record-wire.") from exc


def read_transcript(path: Path) -> Iterator[tuple[int, WireLine]]:
    """``(line number, line)`` of every non-empty line of a transcript file."""
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                try:
                    yield number, line_from_json(text)
                except MalformedMessageError as exc:
                    raise MalformedMessageError(f"{path.name} line {number}: {exc}") from exc


def merge_transcripts(parts: list[Path], into: Path) -> int:
    """Write the lines of every existing file in ``parts`` (each node's own transcript of a
    deployed run) into ``into``, node after node; returns the number of lines. A part that is
    missing (a node that never answered) is skipped."""
    count = 0
    with into.open("w", encoding="utf-8") as out:
        for part in parts:
            if not part.is_file():
                continue
            for text in part.read_text(encoding="utf-8").splitlines():
                if text.strip():
                    out.write(text + "\n")
                    count += 1
    return count
