"""Message types of both protocols: one constant per step, read by the node and the coordinator.

Flower routes a message by its type ``"<category>.<action>"`` (``query``, ``train``,
``evaluate``) to the ClientApp handler registered with ``app.<category>(action)``. A
:class:`MessageType` names both halves once, so a renamed step fails at import, not at run
time: the coordinator sends ``step.message_type``, the node registers with :func:`handles`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flwr.clientapp import ClientApp

CATEGORIES = ("query", "train", "evaluate")
Handler = TypeVar("Handler", bound=Callable[..., object])


@dataclass(frozen=True, slots=True)
class MessageType:
    """One step of a protocol as Flower routes it: ``category`` and an optional ``action``."""

    category: str
    action: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"message category '{self.category}' is not one of {CATEGORIES}.")

    @property
    def message_type(self) -> str:
        """The ``message_type`` string a :class:`flwr.app.Message` carries."""
        return f"{self.category}.{self.action}" if self.action else self.category


def handles(app: ClientApp, step: MessageType) -> Callable[[Handler], Handler]:
    """Decorator registering a ClientApp handler for ``step`` (``@handles(app, V_PSI)``)."""
    register = getattr(app, step.category)
    decorator: Callable[[Handler], Handler] = register(step.action) if step.action else register()
    return decorator
