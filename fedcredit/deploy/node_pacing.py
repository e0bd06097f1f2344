"""A deployed SuperNode's idle and reply waits, shortened to a growing backoff (issue 14).

Flower 1.42's SuperNode main loop (``flwr.supernode.start_client_internal``) sleeps a fixed
3 s whenever its pull from the SuperLink found no message, and 0.5 s at a time while it waits
for its ClientApp's reply. A vertical epoch is ~120 relayed exchanges, each of which waits for
both: seconds per exchange, minutes per epoch, whatever the app does.

:func:`install` replaces the module's ``time`` with :class:`PacedTime`, whose ``sleep`` turns
those two waits into :class:`GrowingWait` s - for the idle pull 50 ms at first, then 10 %
of the time already waited, at most Flower's own 3 s; for the reply, a look at the node's own
memory, 5 ms at first, then 2 %, at most 0.5 s - and wraps Flower's
``_pull_and_store_message`` so that a pulled message starts both waits afresh (and wakes the
node's ClientApp runner, :mod:`fedcredit.deploy.clientapp_runner`). An object of a
message that is not at the SuperLink yet is asked for again after 20 ms, doubling, instead of
Flower's 1 s, doubling (a node often sees a message before the sender has pushed all its
objects): :func:`paced_object_pulls`.
Every other sleep, every pull, delivery, push and check is Flower's own code, unchanged: only
how long an idle node waits before asking again. A node idle for half a minute asks as rarely as
stock Flower.

Installed by :mod:`fedcredit.deploy.supernode_main` in the SuperNode's own process, and only
on the Flower releases in :data:`FLOWER_RELEASES`; on any other release :func:`install`
returns False and Flower's fixed sleeps stay (docs/deployment.md).

Security: the node still only pulls (it opens no port to the SuperLink); more frequent pulls
while busy are authenticated Fleet calls like any other.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

FLOWER_RELEASES = ("1.42.",)
"""Flower releases whose SuperNode main loop this module paces."""
IDLE_SLEEP_S = 3.0
"""Flower 1.42's sleep after a pull that found nothing."""
REPLY_SLEEP_S = 0.5
"""Flower 1.42's sleep between checks for the ClientApp's reply."""
FIRST_WAIT_S = 0.05
WAIT_SHARE = 0.1
"""An idle pull is a Fleet call (TLS, node signature, the gateway, the SuperLink's state):
several ms of CPU on the coordinator's host and the node. 50 ms / 10 % keeps ~17 pulls in a
1 s wait (20 ms / 5 % made ~39) for ~25 ms more latency per message."""
REPLY_FIRST_WAIT_S = 0.005
REPLY_WAIT_SHARE = 0.02
"""The reply wait checks the node's own in-memory state (no network call): finer steps."""
OBJECT_PULL_FIRST_BACKOFF_S = 0.02
"""First retry of an object that is not at the SuperLink yet (Flower 1.42: 1 s, doubling)."""


def paced_object_pulls(pull: Callable[..., Any]) -> functools.partial[Any]:
    """Flower's ``pull_objects`` (or ``pull_and_inflate_object_from_tree``) asking again for a
    missing object after 20 ms, doubling; Flower's cap (10 s), tries and time limit stay, so
    a message whose sender is gone is not asked for every few ms."""
    return functools.partial(pull, initial_backoff=OBJECT_PULL_FIRST_BACKOFF_S)


@dataclass(slots=True)
class GrowingWait:
    """Sleeps of ``max(first_s, share x time waited so far)``, at most ``cap_s``.

    ``reset`` starts afresh (a message arrived); the expected extra latency after a wait of
    ``T`` is then about ``share x T / 2``, never more than ``cap_s``.
    """

    cap_s: float
    first_s: float = FIRST_WAIT_S
    share: float = WAIT_SHARE
    clock: Callable[[], float] = time.monotonic
    _since: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.first_s <= self.cap_s:
            raise ValueError(f"first wait {self.first_s} s must be in (0, cap {self.cap_s} s].")
        if not 0.0 <= self.share < 1.0:
            raise ValueError(f"wait share {self.share} must be in [0, 1).")

    def reset(self) -> None:
        """A message arrived: the next wait is the first again."""
        self._since = None

    def next_delay(self) -> float:
        """How long the next sleep lasts (and start counting the waited time)."""
        now = self.clock()
        if self._since is None:
            self._since = now
        return min(self.cap_s, max(self.first_s, self.share * (now - self._since)))


class PacedTime:
    """Stands in for the ``time`` module in Flower's SuperNode loop: its fixed idle and reply
    sleeps become growing waits; everything else is the real ``time``."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sleep = sleep
        self.idle = GrowingWait(IDLE_SLEEP_S, clock=clock)
        self.reply = GrowingWait(REPLY_SLEEP_S, first_s=REPLY_FIRST_WAIT_S,
                                 share=REPLY_WAIT_SHARE, clock=clock)

    def sleep(self, seconds: float) -> None:
        """Flower's 3 s idle and 0.5 s reply sleeps paced; any other sleep as asked."""
        if seconds == IDLE_SLEEP_S:
            seconds = self.idle.next_delay()
        elif seconds == REPLY_SLEEP_S:
            seconds = self.reply.next_delay()
        self._sleep(seconds)

    def message_arrived(self) -> None:
        """Start both waits afresh."""
        self.idle.reset()
        self.reply.reset()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install(module: ModuleType | None = None, *, version: str | None = None,
            on_message: Callable[[], None] | None = None) -> PacedTime | None:
    """Pace Flower's SuperNode loop in this process; the :class:`PacedTime` installed, or None
    (another Flower release, or a loop that no longer looks like 1.42's: stock sleeps stay).

    ``on_message`` is called after each pulled message is stored and its ClientApp task
    created (the node's ClientApp runner is woken this way instead of polling)."""
    import flwr

    if not (version or flwr.__version__).startswith(FLOWER_RELEASES):
        return None
    if module is None:
        from flwr.supernode import start_client_internal

        module = start_client_internal
    pull = getattr(module, "_pull_and_store_message", None)
    if getattr(module, "time", None) is not time or pull is None:
        return None
    paced = PacedTime()

    def pull_and_store_message(*args: Any, **kwargs: Any) -> Any:
        run_id = pull(*args, **kwargs)
        if run_id is not None:
            paced.message_arrived()
            if on_message is not None:
                on_message()
        return run_id

    objects = getattr(module, "pull_objects", None)
    if objects is not None:
        setattr(module, "pull_objects", paced_object_pulls(objects))  # noqa: B010
    setattr(module, "time", paced)  # noqa: B010  (a module attribute Flower looks up per call)
    setattr(module, "_pull_and_store_message", pull_and_store_message)  # noqa: B010
    return paced
