"""Check the TLS handshake with the coordinator before a node starts, with a clear message.

Flower's SuperNode retries a failed TLS connection quietly; an operator pointing a node at the
wrong CA would see it hang. This probe does one handshake against the SuperLink with the CA
the node will use and turns every failure into one :class:`TLSHandshakeError` that says what
is wrong and what to do.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from fedcredit.deploy.errors import DeploymentError, TLSHandshakeError


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DeploymentError(f"address '{address}' is not host:port.")
    return host.strip("[]"), int(port)


def check_tls(address: str, root_certificates: str | Path, *, timeout: float = 5.0) -> None:
    """One TLS handshake with ``address``, verifying it against ``root_certificates``.

    Parameters
    ----------
    address : str
        The SuperLink, ``host:port``.
    root_certificates : path
        PEM file with the CA the node trusts.
    timeout : float
        Seconds for connect and handshake.

    Raises
    ------
    TLSHandshakeError
        The certificate is not signed by that CA, is not valid for the host name, has
        expired, or the coordinator does not speak TLS.
    DeploymentError
        The coordinator cannot be reached at all.
    """
    host, port = split_address(address)
    try:
        context = ssl.create_default_context(cafile=str(root_certificates))
    except (ssl.SSLError, OSError) as exc:
        raise TLSHandshakeError(f"TLS error: cannot load CA file {root_certificates} "
                                f"({exc}); point root-certificates at the federation's "
                                "ca.pem.") from exc
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return
    except ssl.SSLCertVerificationError as exc:
        raise TLSHandshakeError(_verify_message(address, root_certificates, exc)) from exc
    except ssl.SSLError as exc:
        raise TLSHandshakeError(
            f"TLS error: handshake with the coordinator at {address} failed ({exc.reason or exc});"
            " is the SuperLink running with TLS (--ssl-certfile/--ssl-keyfile)?") from exc
    except OSError as exc:
        raise DeploymentError(f"cannot reach the coordinator at {address} ({exc}); check the "
                              "address, that the SuperLink runs, and the firewall.") from exc


def _verify_message(address: str, ca: str | Path, exc: ssl.SSLCertVerificationError) -> str:
    reason = exc.verify_message or str(exc)
    if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
        return (f"TLS error: the coordinator's certificate is not valid for '{address}' "
                f"({reason}); connect by a name in its subject alternative names or reissue it "
                "with `fedcredit certs --host/--ip`.")
    if "expired" in reason.lower():
        return (f"TLS error: the coordinator's certificate at {address} has expired "
                f"({reason}); the credit center must reissue it with `fedcredit certs`.")
    return (f"TLS error: certificate verify failed: the coordinator at {address} presented a "
            f"certificate that is not signed by the CA in {ca} ({reason}); get the federation's "
            "ca.pem from the credit center and set it as root-certificates.")
