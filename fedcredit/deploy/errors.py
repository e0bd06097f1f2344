"""Named errors of a deployment (certificates, node processes, the local launcher)."""

from __future__ import annotations

from protocols.errors import FedCreditError


class DeploymentError(FedCreditError):
    """A deployment step failed: a process did not start, a run failed or timed out."""


class CertificateError(DeploymentError):
    """Certificates or key files are missing, unreadable, or would be overwritten."""


class TLSHandshakeError(DeploymentError):
    """The TLS handshake with the coordinator failed (wrong CA, wrong host name, no TLS)."""


class NodeRefusedError(DeploymentError):
    """The SuperLink refused a node (its authentication key is not registered)."""


class InsecureRefusedError(DeploymentError):
    """A launch without TLS was asked for implicitly; it needs an explicit ``--insecure``."""
