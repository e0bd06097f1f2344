"""The deployed coordinator's reply objects, asked for again after 20 ms instead of 1 s (issue 14).

When deployed, the ServerApp pulls a reply from the SuperLink and then each of its objects
(``flwr.superlink.grid.http_grid`` -> ``flwr.supercore.inflatable.inflatable_utils
.pull_objects``). A node makes its reply visible before it has pushed all the objects, so the
first pull of an object often finds it missing, and Flower 1.42 then waits 1 s, doubling: about
0.7 s per relayed exchange, ~85 s of a deployed UCI vertical epoch (benchmarks/RESULTS.md).

:func:`install` binds ``initial_backoff`` of that module's ``pull_objects`` to 20 ms (still
doubling, the same cap, tries and time limit), on the Flower releases in
:data:`FLOWER_RELEASES` only; elsewhere Flower's own retry stays. The node side makes the same
change for its own object pulls (:mod:`fedcredit.deploy.node_pacing`).

Security: only how soon an authenticated pull is repeated; what is pulled, checked and
delivered is Flower's code, unchanged.
"""

from __future__ import annotations

import functools
from types import ModuleType

__all__ = ["FLOWER_RELEASES", "OBJECT_PULL_FIRST_BACKOFF_S", "install"]

FLOWER_RELEASES = ("1.42.",)
"""Flower releases whose ServerApp grid this module paces."""
OBJECT_PULL_FIRST_BACKOFF_S = 0.02
"""First retry of a reply object not yet at the SuperLink (Flower 1.42: 1 s, doubling)."""


def install(module: ModuleType | None = None, *, version: str | None = None) -> bool:
    """Pace the ServerApp grid's object retries in this process (idempotent); False where
    Flower's own retry stays (another release, or a grid module that no longer looks like
    1.42's)."""
    import flwr

    if not (version or flwr.__version__).startswith(FLOWER_RELEASES):
        return False
    if module is None:
        from flwr.superlink.grid import http_grid

        module = http_grid
    pull = getattr(module, "pull_objects", None)
    if pull is None:
        return False
    if isinstance(pull, functools.partial) and "initial_backoff" in pull.keywords:
        return True
    setattr(module, "pull_objects", functools.partial(  # noqa: B010
        pull, initial_backoff=OBJECT_PULL_FIRST_BACKOFF_S))
    return True
