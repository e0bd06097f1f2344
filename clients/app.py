"""The node ClientApp (``flwr run`` component): one app, the bank's horizontal handlers (FedAvg
and boosted trees) plus the vertical handlers of the bank and the credit-center data node."""

from __future__ import annotations

from clients import tree_app, vertical_app, vertical_tree_app  # noqa: F401  (register handlers)
from clients.bank_app import app

__all__ = ["app"]
