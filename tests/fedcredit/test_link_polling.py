"""Flower's simulation engine delivers each node's waiting request in one pass over the stored
messages per poll (issue 14): the same messages reach the queue, Flower's check of the stored
messages runs once a poll, an unknown state keeps Flower's loop. The
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
    checked: list[set[str]] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)

    def _check_stored_messages(self, message_ids: set[str]) -> None:
        """Flower's check: deletes the expired ones (here: those named in ``expired``)."""
        self.checked.append(set(message_ids))
        for msg_id in message_ids & self.expired:
            del self.message_ins_store[msg_id]


def test_each_poll_delivers_every_waiting_nodes_first_request_after_one_check() -> None:
    store = {"a": Msg(Meta(7)), "b": Msg(Meta(3, delivered_at="earlier")), "c": Msg(Meta(5)),
             "d": Msg(Meta(7)), "e": Msg(Meta(99)), "f": Msg(Meta(9))}  # 99: not a run node
    state = FakeState(store, expired={"f"})  # node 9's request expired: Flower deletes it
    queue: Queue[Any] = Queue()
    stop = threading.Event()

    def stop_after_three_polls(timeout: float | None = None) -> bool:
        polls.append(1)
        if len(polls) == 3:
            stop.set()
        return stop.is_set()

    polls: list[int] = []
    stop.wait = stop_after_three_polls  # type: ignore[method-assign]
    link_polling.polling_only_waiting_nodes(state, queue, {3: 0, 5: 1, 7: 2, 9: 3}, stop,
                                            stamp=lambda: f"poll {len(polls)}")
    delivered = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [m.metadata.dst_node_id for m in delivered] == [5, 7, 7]  # one per node per poll
    assert delivered[0] is store["c"] and delivered[1] is store["a"]  # the store's order
    assert [m.metadata.delivered_at for m in delivered] == ["poll 0", "poll 0", "poll 1"]
    assert store["e"].metadata.delivered_at == "" and "f" not in store
    assert len(state.checked) == 3  # one check of the stored messages a poll, not a node
    assert state.checked[0] == {"a", "b", "c", "d", "e", "f"}


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
