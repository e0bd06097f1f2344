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

from federation.wire.transcript import TO_COORDINATOR, TO_NODE, line_of, line_to_json, round_of

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
