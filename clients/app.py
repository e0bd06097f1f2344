"""The node ClientApp (``flwr run`` component): one app, the bank's horizontal handlers plus
the vertical handlers of the bank and the credit-center data node."""

from __future__ import annotations

from clients import vertical_app  # noqa: F401  (registers the vertical handlers on ``app``)
from clients.bank_app import app

__all__ = ["app"]
