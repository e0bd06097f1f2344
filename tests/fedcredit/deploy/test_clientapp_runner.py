"""The long-lived ClientApp runner against a real SuperNode Runtime API (Flower 1.42's own
HTTP app and node state, in this process; no SuperLink): one runner serves several tasks, a
ClientApp that raises becomes Flower's error reply and the runner goes on, each run gets its
own Context back from the SuperNode; the SuperNode's paced waits; the node command line."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest
import uvicorn
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict
from flwr.clientapp.client_app import ClientApp
from flwr.common.constant import ErrorCode
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.object_store import ObjectStoreFactory
from flwr.supercore.run import Run
from flwr.supernode.main import create_app
from flwr.supernode.nodestate import NodeState, NodeStateFactory
from flwr.supernode.start_client_internal import _insert_message

from fedcredit.deploy import node_pacing, supernode_main
from fedcredit.deploy.clientapp_runner import (
    AppBundleChanged,
    ClientAppRunner,
    pace_task_input_pulls,
    pipe_waiter,
    restart_command,
)

NODE_ID = 7
COUNTER = "runner-test"

counting_app = ClientApp()


@counting_app.query()
def count(msg: Message, context: Context) -> Message:
    """Adds the message's number to a per-run total kept in the Context; 0 raises."""
    value = cast(int, msg.content.config_records["in"]["x"])
    if value == 0:
        raise ZeroDivisionError("no zeros here")
    record = context.state.get(COUNTER) or ConfigRecord({"total": 0})
    assert isinstance(record, ConfigRecord)
    record["total"] = cast(int, record["total"]) + value
    context.state[COUNTER] = record
    return Message(RecordDict({"out": ConfigRecord({"total": record["total"]})}), reply_to=msg)


def total(reply: Message) -> int:
    """The running total a reply of :func:`count` carries."""
    return cast(int, reply.content.config_records["out"]["total"])


def fab_hash(run_id: int) -> str:
    return hashlib.sha256(f"app {run_id}".encode()).hexdigest()


@dataclass
class Node:
    """A SuperNode's state and Runtime API, without its Fleet connection."""

    state: NodeState
    store: Any
    address: str

    def add_run(self, run_id: int, *, fab_of: int | None = None) -> None:
        """A run of app bundle ``fab_of`` (default: a bundle of its own)."""
        bundle = run_id if fab_of is None else fab_of
        fab = Fab(hash_str=fab_hash(bundle), content=f"app {bundle}".encode(), verifications={})
        run = replace(Run.create_empty(run_id), fab_hash=fab.hash_str, fab_id="test/app",
                      fab_version="1.0.0", series_id=run_id)
        self.state.store_run(run)
        self.state.store_fab(fab)
        self.state.set_run_series_context(run_id, Context(
            run_id=run_id, node_id=NODE_ID, node_config={}, state=RecordDict(), run_config={},
            series_id=run_id))

    def deliver(self, run_id: int, x: int, *, fab_of: int | None = None) -> None:
        """What the SuperNode does with a pulled message: store it, create a task."""
        metadata = Metadata(run_id=run_id, message_id="", src_node_id=1, dst_node_id=NODE_ID,
                            reply_to_message_id="", group_id="", created_at=time.time(),
                            ttl=600.0, message_type="query", src_task_id=0, dst_task_id=0)
        # the form Flower's own deserialisation uses
        msg = Message(metadata=metadata,  # type: ignore[call-overload]
                      content=RecordDict({"in": ConfigRecord({"x": x})}))
        _insert_message(msg, self.state, self.store)
        assert self.state.create_task(task_type=TaskType.CLIENT_APP, run_id=run_id,
                                      fab_hash=fab_hash(run_id if fab_of is None else fab_of),
                                      ) is not None

    def take_replies(self) -> list[Message]:
        """The replies the runner pushed, with their content (from the object store, as the
        SuperNode sends them on)."""
        replies = []
        for stub in self.state.get_messages_legacy(is_reply=True):
            tree = self.store.get_object_tree(stub.metadata.message_id)
            reply = pull_and_inflate_object_from_tree(tree, self.store.get, lambda _: None,
                                                      return_type=Message)
            replies.append(reply)
            self.state.delete_messages(message_ids=[stub.metadata.message_id])
        return replies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def node() -> Iterator[Node]:
    factory = NodeStateFactory(objectstore_factory=ObjectStoreFactory())
    state = factory.state()
    state.set_node_id(NODE_ID)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app=create_app(state_factory=factory,
                                                          superexec_auth_secret=None),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the Runtime API did not start"
        time.sleep(0.02)
    yield Node(state, factory.objectstore_factory.store(), f"127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)


def _runner(node: Node, loads: list[str]) -> ClientAppRunner:
    def load(run: Run, fab: Fab) -> ClientApp:
        loads.append(fab.hash_str)
        return counting_app

    return ClientAppRunner(node.address, load_app=load)


def test_one_runner_serves_many_tasks_and_survives_a_raising_clientapp(node: Node) -> None:
    loads: list[str] = []
    runner = _runner(node, loads)
    node.add_run(1)
    results = []
    for x in (2, 0, 5):  # the middle message makes the ClientApp raise
        node.deliver(1, x)
        task = runner.acquire()
        assert task is not None and task.fab_hash == fab_hash(1)
        results.append(runner.run_task(task.token))
        (reply,) = node.take_replies()
        if x == 0:
            assert reply.has_error()
            assert reply.error.code == ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            assert "no zeros here" in str(reply.error.reason)
        else:
            assert total(reply) == {2: 2, 5: 7}[x]
    assert [r.sub_status for r in results] == ["completed", "failed", "completed"]
    assert loads == [fab_hash(1)]  # the app was loaded once for three tasks
    assert runner.acquire() is None  # nothing left
    runner.close()


def test_each_run_keeps_its_own_context(node: Node) -> None:
    runner = _runner(node, [])
    node.add_run(1)
    node.add_run(2, fab_of=1)
    totals = []
    for run_id, x in ((1, 3), (2, 10), (1, 4)):
        node.deliver(run_id, x, fab_of=1)
        task = runner.acquire()
        assert task is not None
        runner.run_task(task.token)
        (reply,) = node.take_replies()
        totals.append(total(reply))
    assert totals == [3, 10, 7]  # run 2 did not see run 1's total, nor run 1 run 2's
    runner.close()


@pytest.mark.parametrize("woken", [False, True], ids=["polling", "woken-by-pipe"])
def test_serve_picks_up_tasks_until_stopped(node: Node, woken: bool) -> None:
    runner = _runner(node, [])
    node.add_run(1)
    stop = threading.Event()
    read_end, write_end = os.pipe()
    wake = pipe_waiter(read_end) if woken else None
    thread = threading.Thread(target=runner.serve, args=(stop,), kwargs={"wake": wake},
                              daemon=True)
    thread.start()
    replies: list[Message] = []
    try:
        for done, x in enumerate((1, 2), start=1):
            node.deliver(1, x)
            os.write(write_end, b"\1")
            deadline = time.monotonic() + 30
            while runner.tasks_run < done:  # the reply and its objects are all pushed
                assert time.monotonic() < deadline, "the runner did not answer"
                time.sleep(0.01)
            replies += node.take_replies()
    finally:
        stop.set()
        os.write(write_end, b"\1")
        thread.join(timeout=10)
        os.close(write_end)
        os.close(read_end)
    assert not thread.is_alive()
    assert [total(r) for r in replies] == [1, 3]
    assert runner.tasks_run == 2


def test_a_task_of_another_app_bundle_needs_a_fresh_runner(node: Node) -> None:
    """Our modules are imported once per process: a run of another bundle is never answered
    with the first bundle's code. ``serve`` stops with the task (``main`` re-executes the
    runner with it); a task run directly gets Flower's load error."""
    runner = _runner(node, [])
    node.add_run(1)
    node.add_run(2)
    node.deliver(1, 1)
    node.deliver(2, 1)
    stop = threading.Event()
    with pytest.raises(AppBundleChanged) as changed:
        runner.serve(stop)
    assert runner.tasks_run == 1 and changed.value.token
    (first,) = node.take_replies()
    assert total(first) == 1
    runner.run_task(changed.value.token)
    (refused,) = node.take_replies()
    assert refused.has_error() and refused.error.code == ErrorCode.LOAD_CLIENT_APP_EXCEPTION
    again = restart_command(["--runtime-api-address", "h:1", "--first-token", "old"], "new")
    assert again == ["-m", "fedcredit.deploy.clientapp_runner", "--runtime-api-address", "h:1",
                     "--first-token", "new"]


def test_paced_waits_grow_from_short_to_flowers_own_and_restart_on_a_message() -> None:
    now = [0.0]
    slept: list[float] = []
    paced = node_pacing.PacedTime(sleep=slept.append, clock=lambda: now[0])
    for _ in range(3):
        paced.sleep(3)
        now[0] += slept[-1]
    assert slept == [node_pacing.FIRST_WAIT_S] * 3
    now[0] += 100.0
    paced.sleep(3)
    assert slept[-1] == 3.0  # idle long enough: Flower's own interval
    paced.sleep(0.5)
    paced.sleep(1.25)  # any other sleep is untouched
    assert slept[-2:] == [node_pacing.REPLY_FIRST_WAIT_S, 1.25]
    paced.message_arrived()
    paced.sleep(3)
    assert slept[-1] == node_pacing.FIRST_WAIT_S


def test_the_runner_asks_again_for_a_missing_message_part_after_twenty_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    from flwr.supercore.inflatable import inflatable_utils
    from flwr.supercore.inflatable.inflatable_utils import ObjectUnavailableError

    missing = [2]

    def pull(object_id: str) -> bytes:
        if missing[0]:
            missing[0] -= 1
            raise ObjectUnavailableError(object_id)
        return b"x"

    delays: list[float | None] = []

    class RecordingEvent(threading.Event):
        """Flower's retry waits on its stop event: record each wait instead of sleeping."""

        def wait(self, timeout: float | None = None) -> bool:
            delays.append(timeout)
            return self.is_set()

    monkeypatch.setattr(inflatable_utils, "threading",
                        types.SimpleNamespace(Event=RecordingEvent, Lock=threading.Lock))
    module = types.ModuleType("fake_run_clientapp")
    assert not pace_task_input_pulls(module)
    module.pull_objects = inflatable_utils.pull_objects  # type: ignore[attr-defined]
    module.pull_and_inflate_object_from_tree = module.pull_objects  # type: ignore[attr-defined]
    assert pace_task_input_pulls(module) and pace_task_input_pulls(module)  # wraps once
    paced = module.pull_and_inflate_object_from_tree
    assert paced.func is inflatable_utils.pull_objects
    assert paced(["a"], pull) == {"a": b"x"}
    first = node_pacing.OBJECT_PULL_FIRST_BACKOFF_S
    assert len(delays) == 2  # Flower's 1 s first retry would be ~1.0 (+-20 %)
    assert first * 0.7 < (delays[0] or 0.0) < first * 1.3 < (delays[1] or 0.0) < first * 2.5


def test_install_paces_only_a_known_release_and_a_pulled_message_restarts_the_wait() -> None:
    import types

    module = types.ModuleType("fake_loop")
    pulled: list[int | None] = [None, 5]
    module.time = time  # type: ignore[attr-defined]
    module._pull_and_store_message = lambda: pulled.pop(0)  # type: ignore[attr-defined]
    assert node_pacing.install(module, version="1.43.0") is None
    assert module.time is time
    paced = node_pacing.install(module, version="1.42.0")
    assert isinstance(paced, node_pacing.PacedTime) and module.time is paced
    paced.idle.next_delay()
    assert module._pull_and_store_message() is None
    assert paced.idle._since is not None  # nothing pulled: the wait goes on growing
    assert module._pull_and_store_message() == 5
    assert paced.idle._since is None  # a message: the next wait is the first again


def test_the_node_runs_the_fast_supernode_only_where_it_can() -> None:
    argv = ["--superlink", "x:1", "--port", "9123"]
    assert supernode_main.wants_fast_node(argv, "1.42.0", env={})
    assert not supernode_main.wants_fast_node(argv, "1.43.0", env={})
    assert not supernode_main.wants_fast_node(argv, "1.42.0",
                                              env={supernode_main.STOCK_ENV: "1"})
    assert not supernode_main.wants_fast_node([*argv, "--isolation", "subprocess"], "1.42.0",
                                              env={})
    cmd = supernode_main.runner_command(argv, 42, 5)
    assert cmd[cmd.index("--runtime-api-address") + 1] == "127.0.0.1:9123"
    assert cmd[cmd.index("--parent-pid") + 1] == "42"
    assert cmd[cmd.index("--wake-fd") + 1] == "5"


def test_the_wake_pipe_wakes_the_runner_and_its_end_stops_it() -> None:
    read_end, write_end = os.pipe()
    wake = pipe_waiter(read_end)
    started = time.monotonic()
    os.write(write_end, b"\1\1")
    wake(30.0)  # returns at once: bytes are waiting (both drained)
    wake(0.05)  # nothing waiting: returns after the timeout
    assert time.monotonic() - started < 20
    os.close(write_end)
    with pytest.raises(SystemExit):
        wake(30.0)
    os.close(read_end)


def test_a_runner_that_exits_is_started_again_until_the_node_stops(tmp_path: Path) -> None:
    marks = tmp_path / "starts.txt"
    command = [sys.executable, "-c", f"open({str(marks)!r}, 'a').write('x')"]
    stopping = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(
        supernode_main.supervise(command, stopping, delay_s=0.01)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (marks.is_file() and len(marks.read_text()) >= 3):
        assert time.monotonic() < deadline, "the runner was not started again"
        time.sleep(0.05)
    stopping.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and result and result[0] >= 3
    assert len(marks.read_text()) == result[0]  # nothing started after the node stopped
