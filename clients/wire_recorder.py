"""The node's wire recorder: a ClientApp mod writing every request and reply to ``wire.jsonl``.

Protocol step: all of them, unchanged. The mod sits at the node boundary (Flower calls it with
every message to this node and gets the reply back through it), so the transcript holds
exactly what reached and left the node, the same in simulation and deployment. It records
only when this node's own config names a file (``record-wire``): a deployed bank decides for
itself (its node.toml), never the coordinator; a simulation's launcher wraps the app with
:class:`RecordingClientApp`, which sets the key for every simulated node.

Security: the transcript is as sensitive as the node's wire traffic and stays in the node's
own folder; the line format is :mod:`federation.wire.transcript`. A message the handler
refuses (an exception) is recorded as received and the exception propagates unchanged.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable

from federation.steps.vertical_stream import FrameLink
from federation.wire.peer_frames import STEP_NAMES
from federation.wire.transcript import (
    KIND_CONFIG,
    TO_COORDINATOR,
    TO_NODE,
    WireLine,
    WireValue,
    line_of,
    line_to_json,
    round_of,
)

RECORD_WIRE = "record-wire"
"""Node-config key: the file this node appends its transcript to (absent or empty: off)."""


def append_line(path: Path, text: str) -> None:
    """Append one line under an exclusive lock (simulated nodes share one file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # closing releases the lock


def record_wire_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower mod: record ``msg`` and the reply when this node's config names a file."""
    target = context.node_config.get(RECORD_WIRE)
    if not target:
        return call_next(msg, context)
    path = Path(str(target))
    round_index = round_of(msg) or 0
    append_line(path, line_to_json(line_of(msg, direction=TO_NODE, node=context.node_id,
                                           round_index=round_index)))
    reply = call_next(msg, context)
    append_line(path, line_to_json(line_of(reply, direction=TO_COORDINATOR, node=context.node_id,
                                           round_index=round_index)))
    return reply


class RecordingLink:
    """A peer stream (``vertical-transport = "stream"``) that records each frame's payload as a
    transcript line: what this node sends to the relay as ``to-coordinator``, what it receives
    as ``to-node``, type ``stream.<step>``. The payload is recorded opened, as the coordinator
    (which drew the session key) can read it, so ``fedcredit audit wire`` scans it like any
    relayed message."""

    def __init__(self, link: FrameLink, path: Path, node: int) -> None:
        self.link, self.path, self.node = link, path, int(node)

    def _record(self, direction: str, step: int, epoch: int, payload: bytes) -> None:
        value = WireValue("frame", KIND_CONFIG, "blob", "bytes", (len(payload),), payload)
        append_line(self.path, line_to_json(WireLine(direction, self.node, epoch,
                                                     f"stream.{STEP_NAMES[step]}", (value,))))

    def send(self, step: int, epoch: int, batch: int, payload: bytes) -> None:
        """Record, then send."""
        self._record(TO_COORDINATOR, step, epoch, payload)
        self.link.send(step, epoch, batch, payload)

    def receive(self, step: int, epoch: int, batch: int) -> bytes:
        """Receive, then record."""
        payload = self.link.receive(step, epoch, batch)
        self._record(TO_NODE, step, epoch, payload)
        return payload


def recording(link: FrameLink, context: Context) -> FrameLink:
    """``link`` recorded into this node's transcript when its config names one."""
    target = context.node_config.get(RECORD_WIRE)
    return RecordingLink(link, Path(str(target)), context.node_id) if target else link


class RecordingClientApp(ClientApp):
    """A simulation's ClientApp that records every node's wire traffic into one file.

    Sets ``record-wire`` in each simulated node's config (the simulation engine gives nodes
    no other config) and hands the message to ``inner``, whose :func:`record_wire_mod`
    records it. ``path`` must be absolute: simulated nodes may run in other processes.
    """

    def __init__(self, inner: ClientApp, path: Path) -> None:
        super().__init__()
        self._inner = inner
        self._path = str(Path(path).resolve())

    def __call__(self, message: Message, context: Context) -> Message:
        """Mark the node as recording, then run the wrapped app."""
        context.node_config[RECORD_WIRE] = self._path
        return self._inner(message, context)
