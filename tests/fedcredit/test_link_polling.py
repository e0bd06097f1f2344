"""Flower's simulation engine asks only the nodes with a waiting request (issue 14): the same
messages reach the queue, the idle asks are gone, an unknown state keeps Flower's loop. The
end-to-end runs (``test_scale.py`` pins the model) go through the patched engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

import pytest

from fedcredit.simulation import link_polling


@dataclass
class Meta:
    dst_node_id: int
    delivered_at: str = ""


@dataclass
class Msg:
    metadata: Meta


@dataclass
class FakeState:
    """The two attributes the patch reads, and Flower's ``get_message_ins`` contract."""

    message_ins_store: dict[str, Msg]
    lock: Any = field(default_factory=threading.RLock)
    asked: list[int] = field(default_factory=list)

    def get_message_ins(self, *, node_id: int, limit: int) -> list[Msg]:
        self.asked.append(node_id)
        for msg in self.message_ins_store.values():
            if msg.metadata.dst_node_id == node_id and msg.metadata.delivered_at == "":
                msg.metadata.delivered_at = "now"
                return [msg][:limit]
        return []


def test_only_nodes_with_an_undelivered_request_are_asked() -> None:
    store = {"a": Msg(Meta(7)), "b": Msg(Meta(3, delivered_at="earlier")), "c": Msg(Meta(5)),
             "d": Msg(Meta(7)), "e": Msg(Meta(99))}  # 99: not a node of this run
    state = FakeState(store)
    assert link_polling.waiting_nodes(state, [3, 5, 7, 9]) == [5, 7]
    queue: Queue[Any] = Queue()
    stop = threading.Event()

    def stop_after_two_polls(timeout: float | None = None) -> bool:
        polls.append(1)
        if len(polls) == 2:
            stop.set()
        return stop.is_set()

    polls: list[int] = []
    stop.wait = stop_after_two_polls  # type: ignore[method-assign]
    link_polling.polling_only_waiting_nodes(state, queue, {3: 0, 5: 1, 7: 2, 9: 3}, stop)
    delivered = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [m.metadata.dst_node_id for m in delivered] == [5, 7, 7]  # one per node per poll
    assert state.asked == [5, 7, 7]  # nodes 3 and 9 (nothing waiting) were never asked
    assert store["e"].metadata.delivered_at == ""


def test_install_replaces_flowers_loop_once_and_keeps_it_for_other_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flwr.server.superlink.fleet.vce import vce_api

    calls: list[Any] = []
    monkeypatch.setattr(vce_api, "add_messages_to_queue", lambda *a: calls.append(a))
    assert link_polling.install() is True
    patched = vce_api.add_messages_to_queue
    assert getattr(patched, "fedcredit_patch", False)
    assert link_polling.install() is True and vce_api.add_messages_to_queue is patched
    stop = threading.Event()
    stop.set()
    patched(object(), Queue(), {1: 0}, stop)  # not Flower's in-memory state: Flower's loop
    assert len(calls) == 1


def test_another_flower_release_keeps_its_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import flwr
    from flwr.server.superlink.fleet.vce import vce_api

    def flowers_loop(*args: Any) -> None:  # stands for Flower's own, unpatched loop
        return None

    monkeypatch.setattr(vce_api, "add_messages_to_queue", flowers_loop)
    monkeypatch.setattr(flwr, "__version__", "9.0.0")
    assert link_polling.install() is False
    assert vce_api.add_messages_to_queue is flowers_loop
