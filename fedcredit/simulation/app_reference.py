"""Flower's simulation engine hands its Ray actors the bank's ClientApp by name (issue 14).

Flower 1.42's Ray backend (``flwr.server.superlink.fleet.vce.backend.raybackend``) sends, with
every message, the function that loads the ClientApp: a closure of the simulation runtime that
holds the ClientApp object. Ray pickles that closure by value for each message (its code, its
cells, the ClientApp's handler table: ~6 KB, ~0.8 ms in the coordinator's process and ~0.2 ms
in the actor's, for a message whose own content is often smaller), which at 100 banks is
hundreds of times a round.

:func:`install` wraps the backend's ``build``: when the loaded ClientApp is this package's
``clients.app.app`` (the one ``fedcredit simulate`` runs), the backend keeps :func:`bank_app`
instead, a module-level function that Ray pickles by reference and that returns the very same
object in each actor (the actor imports ``clients.app`` as Flower's loader would). Any other
ClientApp (a wire-recording run's wrapper, a test's app) keeps Flower's closure. Messages,
handlers and replies are unchanged; installed only on the Flower release it was written for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FLOWER_RELEASES = ("1.42.",)
"""Flower releases whose ``RayBackend.build`` this module wraps."""


def bank_app() -> Any:
    """The node ClientApp, ``clients.app.app`` (pickled by reference: module and name)."""
    from clients.app import app

    return app


def by_reference(app_fn: Callable[[], Any]) -> Callable[[], Any]:
    """:func:`bank_app` when ``app_fn`` loads ``clients.app.app``, else ``app_fn`` itself."""
    try:
        loaded = app_fn()
    except Exception:  # noqa: BLE001  (Flower reports a loader that fails; not this wrapper)
        return app_fn
    return bank_app if loaded is bank_app() else app_fn


def install() -> bool:
    """Wrap Flower's ``RayBackend.build`` for this process's simulations; returns whether it
    did (False on another Flower release: Flower's closure then travels as before)."""
    import flwr
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    current = RayBackend.build
    if getattr(current, "fedcredit_patch", False):
        return True
    if not flwr.__version__.startswith(FLOWER_RELEASES):
        return False

    def build(self: Any, app_fn: Callable[[], Any]) -> None:
        current(self, by_reference(app_fn))

    build.fedcredit_patch = True  # type: ignore[attr-defined]
    RayBackend.build = build  # type: ignore[method-assign]
    return True
