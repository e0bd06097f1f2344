"""The vertical wire vocabulary: one message type per step, each handled by the node app, one
constant per field name, builders that round-trip, and no literal repeated in the apps."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Message, Metadata, RecordDict
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.run.vertical_config import VerticalConfig
from federation.wire.vertical import (
    FIELD_NAMES,
    KEY_VRUN,
    KEY_VSTEP,
    VERTICAL_STEPS,
    Field,
    batch_fields,
    blob_fields,
    iv_fields,
    relayed_bytes,
    stage_fields,
    unpack_reply,
    unpack_request,
    vertical_reply,
    vertical_request,
)
from protocols.errors import MalformedMessageError

REPO = Path(__file__).resolve().parents[2]

# What today's nodes and coordinators put on the wire: a deployment of mixed versions needs both.
WIRE_MESSAGE_TYPES = [
    "query.v_setup", "query.v_psi", "query.v_prepare", "query.v_start", "query.v_bin",
    "train.v_encrypt", "train.v_gradient", "train.v_open", "train.v_update", "train.v_stream",
    "query.v_score",
    "query.v_tree_start", "train.v_tree_grad", "train.v_tree_level", "train.v_tree_decide",
    "train.v_tree_apply", "query.v_tree_score",
]
WIRE_FIELD_NAMES = {
    "role", "rows", "public_key", "stage", "blob", "size", "run-id", "train_rows", "test_rows",
    "features", "bank-features", "center-features", "peer-public-key", "batches", "epoch",
    "batch", "opened", "updates", "relay-host", "relay-port", "session-key", "frames", "auc",
    "ks", "hist_bad", "hist_good", "cal_bad", "cal_good", "iv_json",
    "positions", "categorical", "assignment", "build", "count", "splits_json", "split_ids", "done",
}
ACCESSORS = {"blob", "int", "text", "number", "counts", "texts"}  # StepFields readers
WIRE_OWNED_ELSEWHERE = {"result_payload"}  # results.json keys (its owner is server.results)


def test_vertical_message_types_are_unique_and_unchanged() -> None:
    types = [step.message_type for step in VERTICAL_STEPS]
    assert len(set(types)) == len(types)
    assert types == WIRE_MESSAGE_TYPES


def test_the_node_app_handles_every_vertical_step() -> None:
    from clients.app import app

    # flwr 1.42 keeps ClientApp handlers by "<category>.<action>" (see ClientApp.__call__)
    registered = app._registered_funcs  # noqa: SLF001
    assert [t for t in WIRE_MESSAGE_TYPES if t not in registered] == []


def test_field_names_are_unique_and_unchanged() -> None:
    names = [value for name, value in vars(Field).items() if name.isupper()]
    assert len(set(names)) == len(names)
    assert FIELD_NAMES == WIRE_FIELD_NAMES


def _incoming(content: RecordDict, message_type: str) -> Message:
    """A request as a node receives it (metadata set by the SuperLink, as flwr does inside)."""
    return Message(content, metadata=Metadata(  # type: ignore[call-overload]
        run_id=1, message_id="m1", src_node_id=1, dst_node_id=2, reply_to_message_id="",
        group_id="", created_at=0.0, ttl=60.0, message_type=message_type))


@settings(deadline=None, max_examples=60)
@given(stage=st.integers(0, 4), blob=st.none() | st.binary(max_size=64),
       epoch=st.integers(0, 50), batch=st.integers(0, 10**6))
def test_requests_round_trip(stage: int, blob: bytes | None, epoch: int, batch: int) -> None:
    cfg = VerticalConfig(epochs=3, batch_size=256)
    cfg_back, step = unpack_request(vertical_request(cfg, stage_fields(stage, blob)))
    assert cfg_back == cfg and step.int(Field.STAGE) == stage
    assert (Field.BLOB in step) == (blob is not None)
    if blob is not None:
        assert step.blob(Field.BLOB) == blob
    _, step = unpack_request(vertical_request(cfg, batch_fields(epoch, batch, opened=blob)))
    assert (step.int(Field.EPOCH), step.int(Field.BATCH)) == (epoch, batch)
    assert (Field.OPENED in step, Field.BLOB in step) == (blob is not None, False)


@settings(deadline=None, max_examples=60)
@given(blob=st.binary(max_size=64), rows=st.integers(0, 10**9),
       iv=st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False,
                                                          allow_infinity=False), max_size=5))
def test_replies_round_trip(blob: bytes, rows: int, iv: dict[str, float]) -> None:
    from server.vertical import parse_iv

    request = _incoming(vertical_request(VerticalConfig(), {}), VERTICAL_STEPS[0].message_type)
    reply = vertical_reply(request, {**blob_fields(blob), Field.ROWS: rows, **iv_fields(iv)})
    assert reply.metadata.message_type == request.metadata.message_type
    step = unpack_reply(reply.content)
    assert (step.blob(Field.BLOB), step.int(Field.ROWS)) == (blob, rows)
    assert parse_iv(step.text(Field.IV_JSON)) == iv
    assert relayed_bytes(reply.content) == len(blob)


def test_a_request_or_reply_without_its_records_is_malformed() -> None:
    run = ConfigRecord(VerticalConfig().to_user_config())
    for content in (RecordDict({KEY_VRUN: run}), RecordDict({KEY_VSTEP: ConfigRecord({})})):
        with pytest.raises(MalformedMessageError):
            unpack_request(content)
    with pytest.raises(MalformedMessageError):
        unpack_reply(RecordDict({KEY_VRUN: run}))


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def test_no_vertical_message_type_is_spelled_out_in_the_apps() -> None:
    actions = {step.action for step in VERTICAL_STEPS}
    pattern = re.compile(r"^((query|train|evaluate)\.)?v_")
    found = [f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}"
             for path in _sources("clients", "server")
             for node in ast.walk(ast.parse(path.read_text("utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and (pattern.match(node.value) or node.value in actions)]
    assert found == []


def _field_literals(tree: ast.AST) -> list[ast.Constant]:
    """String constants naming a step field: dict keys, StepFields reader arguments and
    ``"x" in step`` tests, outside the functions whose keys belong to another format."""
    skipped = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               and f.name in WIRE_OWNED_ELSEWHERE for n in ast.walk(f)}
    candidates: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Dict):
            candidates.extend(node.keys)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ACCESSORS and node.args):
            candidates.append(node.args[0])
        elif (isinstance(node, ast.Compare) and isinstance(node.ops[0], (ast.In, ast.NotIn))
              and isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == "step"):
            candidates.append(node.left)
        elif isinstance(node, ast.Call):
            candidates.extend(ast.Constant(k.arg) for k in node.keywords
                              if k.arg in FIELD_NAMES and isinstance(node.func, ast.Name)
                              and node.func.id in {"vertical_reply", "vertical_request"})
    return [c for c in candidates if isinstance(c, ast.Constant) and c.value in FIELD_NAMES]


@pytest.mark.parametrize("module", ["clients/vertical_app.py", "server/vertical.py"])
def test_no_step_field_name_is_spelled_out_in_the_apps(module: str) -> None:
    tree = ast.parse((REPO / module).read_text("utf-8"))
    assert [f"{module}:{getattr(c, 'lineno', '?')} {c.value!r}"
            for c in _field_literals(tree)] == []


def test_the_field_literal_check_catches_the_old_spelling() -> None:
    old = ('def psi(step):\n'
           '    first = step.blob("blob")\n'
           '    if "opened" in step:\n'
           '        pass\n'
           '    return {"stage": 1}, vertical_reply(msg, rows=3)\n')
    assert sorted(str(c.value) for c in _field_literals(ast.parse(old))) == [
        "blob", "opened", "rows", "stage"]


def test_the_party_steps_load_no_flwr() -> None:
    code = ("import sys\n"
            "import federation.steps.vertical_party, federation.steps.vertical_bank\n"
            "import federation.steps.vertical_center\n"
            "print('flwr' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
