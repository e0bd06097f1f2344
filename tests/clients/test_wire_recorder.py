"""The node's wire recorder: with ``record-wire`` in the node config every request and its
reply become two transcript lines; without it nothing is written; a refused request is
recorded as received and the error goes on unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, Metadata, RecordDict

from clients.wire_recorder import RECORD_WIRE, RecordingClientApp, record_wire_mod
from federation.wire.transcript import TO_COORDINATOR, TO_NODE, read_transcript


def _message(content: RecordDict, message_type: str = "train") -> Message:
    return Message(content, metadata=Metadata(  # type: ignore[call-overload]
        run_id=1, message_id="m1", src_node_id=1, dst_node_id=7, reply_to_message_id="",
        group_id="", created_at=0.0, ttl=60.0, message_type=message_type))


def _context(**node: str | int) -> Context:
    return Context(run_id=1, node_id=7, state=RecordDict(), run_config={}, node_config=node)


def _request() -> Message:
    return _message(RecordDict({"step": ConfigRecord({"round": 3, "run-id": "r"})}))


def _reply(msg: Message, context: Context) -> Message:
    return _message(RecordDict({"sealed": ConfigRecord({"payload": b"\x01\x02"}),
                                "w": ArrayRecord([np.arange(4.0)])}))


def test_every_request_and_reply_is_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"
    for _ in range(2):
        record_wire_mod(_request(), _context(**{RECORD_WIRE: str(path)}), _reply)
    lines = [line for _, line in read_transcript(path)]
    assert [(ln.direction, ln.node, ln.round, ln.type) for ln in lines] == [
        (TO_NODE, 7, 3, "train"), (TO_COORDINATOR, 7, 3, "train")] * 2
    reply = {(v.record, v.key): v for v in lines[1].values}
    assert reply[("sealed", "payload")].raw == b"\x01\x02"
    assert reply[("w", "0")].raw == np.arange(4.0).tobytes()


def test_nothing_is_written_without_the_node_setting(tmp_path: Path) -> None:
    reply = record_wire_mod(_request(), _context(), _reply)
    assert reply.content["sealed"]["payload"] == b"\x01\x02"
    assert list(tmp_path.iterdir()) == []


def test_a_refused_request_is_recorded_and_the_error_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"

    def refuse(msg: Message, context: Context) -> Message:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        record_wire_mod(_request(), _context(**{RECORD_WIRE: str(path)}), refuse)
    assert [line.direction for _, line in read_transcript(path)] == [TO_NODE]


def test_a_simulation_app_sets_the_file_for_every_node(tmp_path: Path) -> None:
    seen = []

    class Inner:
        def __call__(self, msg: Message, context: Context) -> Message:
            seen.append(context.node_config[RECORD_WIRE])
            return msg

    app = RecordingClientApp(Inner(), tmp_path / "wire.jsonl")  # type: ignore[arg-type]
    app(_request(), _context())
    assert seen == [str((tmp_path / "wire.jsonl").resolve())]
