"""Errors raised by the coordinator while it runs a federation."""

from __future__ import annotations

from protocols.errors import FedCreditError


class FederationError(FedCreditError):
    """A node failed a step, did not answer, or too few nodes joined."""
