"""Flower's simulation engine polls only the banks that have a request waiting (issue 14).

Flower 1.42's simulation runtime (``flwr.server.superlink.fleet.vce.vce_api``) moves requests
from its in-memory link state to the Ray actors with one thread that, every 0.1 s, asks the
state for one undelivered message *for every node*; each ask scans every stored message
(delivered ones stay until their reply is collected) and re-checks each one's expiry and
federation. With K banks and a step's K requests stored, that is K x K checks every 0.1 s
for the whole step, whether or not anything is waiting: about a third of a core at 100 banks
(py-spy), and at 1,000 banks a million checks per poll.

:func:`polling_only_waiting_nodes` replaces that thread's loop with one pass over the stored
messages per poll, under the state's lock: Flower's own check of every stored message (expiry
and federation, ``_check_stored_messages``, which deletes what fails) runs once for all of
them instead of once per node asked, then each node's first undelivered request (Flower's
``limit=1`` order: the store's) is marked delivered, as ``get_message_ins`` marks it, and
queued, node by node in Flower's order. Messages, their order per node and the replies are
what Flower delivers; only the repeated scans are gone (at 1,000 banks a step's first poll
was a thousand scans of a thousand messages, a third of the coordinator process's time).
The patch is installed for ``fedcredit simulate`` runs only (:func:`install`), and only on
the Flower release and link state it was written for; anything else keeps Flower's loop.
Flower's bare floor in ``scripts/bench_scale.py`` runs unpatched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import Queue
from typing import Any

FLOWER_RELEASES = ("1.42.",)
"""Flower releases whose ``vce_api.add_messages_to_queue`` this module replaces."""
POLL_S = 0.1
"""Flower's own poll interval."""


def deliver_waiting(state: Any, nodes: list[int], stamp: Callable[[], str]) -> list[Any]:
    """One poll: Flower's check of every stored message, once; then the first undelivered
    request of each node of ``nodes`` that has one, marked delivered at ``stamp()``, in the
    order of ``nodes`` (what ``get_message_ins(node_id, limit=1)`` for each returns)."""
    wanted = set(nodes)
    with state.lock:
        ids = list(state.message_ins_store.keys())
        state._check_stored_messages(set(ids))  # noqa: SLF001 - Flower's own check, once
        first: dict[int, Any] = {}
        for msg_id in ids:
            message = state.message_ins_store.get(msg_id)
            if message is None or message.metadata.delivered_at != "":
                continue
            node = message.metadata.dst_node_id
            if node in wanted and node not in first:
                first[node] = message
        delivered_at = stamp()
        for message in first.values():
            message.metadata.delivered_at = delivered_at
    return [first[node] for node in nodes if node in first]


def polling_only_waiting_nodes(state: Any, queue: Queue[Any], nodes_mapping: dict[int, Any],
                               f_stop: threading.Event,
                               stamp: Callable[[], str] | None = None) -> None:
    """Flower's ``add_messages_to_queue`` in one pass over the stored messages per poll."""
    if stamp is None:
        from flwr.supercore.date import now

        def stamp() -> str:
            return now().isoformat()

    while not f_stop.is_set():
        for message in deliver_waiting(state, list(nodes_mapping.keys()), stamp):
            queue.put(message)
        f_stop.wait(POLL_S)


def _checked(original: Callable[..., None]) -> Callable[..., None]:
    """The replacement, falling back to Flower's loop for a state it does not know."""
    from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState

    def add_messages_to_queue(state: Any, queue: Queue[Any], nodes_mapping: dict[int, Any],
                              f_stop: threading.Event) -> None:
        known = isinstance(state, InMemoryLinkState) and all(
            hasattr(state, name) for name in ("message_ins_store", "lock",
                                              "_check_stored_messages"))
        (polling_only_waiting_nodes if known else original)(state, queue, nodes_mapping, f_stop)

    add_messages_to_queue.fedcredit_patch = True  # type: ignore[attr-defined]
    return add_messages_to_queue


def install() -> bool:
    """Replace Flower's polling loop for this process's simulations; returns whether it did
    (False on another Flower release: its own loop then runs)."""
    import flwr
    from flwr.server.superlink.fleet.vce import vce_api

    current = vce_api.add_messages_to_queue
    if getattr(current, "fedcredit_patch", False):
        return True
    if not flwr.__version__.startswith(FLOWER_RELEASES):
        return False
    vce_api.add_messages_to_queue = _checked(current)
    return True
