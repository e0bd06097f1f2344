"""The federation's certificates: a small CA, the SuperLink's TLS certificate, node keys.

Who holds what
--------------
* ``ca.key`` signs the SuperLink certificate; keep it offline at the credit center.
* ``ca.pem`` is public: every node and every ``flwr`` client trusts the SuperLink through it.
* ``superlink.pem`` / ``superlink.key``: the SuperLink's TLS identity. Its subject alternative
  names must cover every address nodes dial (host names, IPs) and always include
  ``localhost``, ``127.0.0.1`` and ``::1``, because the SuperLink's own app runtime reaches it
  over loopback with the same certificate.
* ``nodes/<name>.key`` / ``nodes/<name>.pub``: a node's authentication key pair (ECDSA
  P-384, OpenSSH encoding, as Flower expects). The private half never leaves the node; the
  public half is registered at the SuperLink with ``flwr supernode register``. In a real
  deployment each bank runs ``fedcredit node-key`` on its own machine instead.

Every file is written with mode 0600 (folders 0700); existing files are never overwritten
unless ``force`` is set. Time is passed in (``now``) so tests are deterministic.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedcredit.deploy.errors import CertificateError

LOOPBACK_HOSTS = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")
CURVE = ec.SECP384R1()
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """What ``fedcredit certs`` should issue.

    Attributes
    ----------
    hosts : tuple of str
        DNS names nodes use to reach the SuperLink (``localhost`` is always added).
    ips : tuple of str
        IP addresses nodes use to reach the SuperLink (127.0.0.1 and ::1 are always added).
    nodes : tuple of str
        Names of the nodes that get an authentication key pair (e.g. ``bank-0``).
    days : int
        Validity of the SuperLink certificate; the CA lives ten times as long.
    """

    hosts: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    days: int = 365

    def __post_init__(self) -> None:
        for host in self.hosts:
            if not _HOST_RE.match(host):
                raise ValueError(f"--host '{host}' is not a valid DNS name; give a name like "
                                 "'center.example.org' (IP addresses go in --ip).")
        for ip in self.ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError as exc:
                raise ValueError(f"--ip '{ip}' is not an IPv4 or IPv6 address.") from exc
        for name in self.nodes:
            check_node_name(name)
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"node names must be distinct (got {', '.join(self.nodes)}).")
        if self.days < 1:
            raise ValueError(f"--days must be at least 1 (got {self.days}).")

    @property
    def san_hosts(self) -> tuple[str, ...]:
        """DNS names in the certificate: the requested ones plus ``localhost``."""
        return tuple(dict.fromkeys((*self.hosts, *LOOPBACK_HOSTS)))

    @property
    def san_ips(self) -> tuple[str, ...]:
        """IP addresses in the certificate: the requested ones plus loopback."""
        return tuple(dict.fromkeys((*self.ips, *LOOPBACK_IPS)))


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    """Where ``write_federation_certificates`` put each file."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """Public CA certificate (give it to every node and every ``flwr`` client)."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """CA private key (keep offline)."""
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        """SuperLink TLS certificate."""
        return self.folder / "superlink.pem"

    @property
    def server_key(self) -> Path:
        """SuperLink TLS private key."""
        return self.folder / "superlink.key"

    def node_key(self, name: str) -> Path:
        """Node ``name``'s private authentication key."""
        return self.folder / "nodes" / f"{name}.key"

    def node_pub(self, name: str) -> Path:
        """Node ``name``'s public authentication key (registered at the SuperLink)."""
        return self.folder / "nodes" / f"{name}.pub"


def check_node_name(name: str) -> str:
    """Return ``name`` if it is a usable node name (file-name safe), else raise ValueError."""
    if not _NODE_RE.match(name):
        raise ValueError(f"node name '{name}' must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit.")
    return name


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedcredit federation"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(
    *, days: int, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(CURVE)
    name = _name("fedcredit federation CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


def issue_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    request: CertificateRequest,
    *,
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The SuperLink's TLS certificate, signed by the CA, valid for ``request``'s names."""
    key = ec.generate_private_key(CURVE)
    san: list[x509.GeneralName] = [x509.DNSName(h) for h in request.san_hosts]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in request.san_ips]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder().subject_name(_name(request.san_hosts[0]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=request.days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return key, cert


def node_keypair_bytes() -> tuple[bytes, bytes]:
    """A fresh node authentication key pair as (OpenSSH private key, OpenSSH public key)."""
    key = ec.generate_private_key(CURVE)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    return private, public + b"\n"


def write_private(path: Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` with mode 0600 (folder 0700); refuse to overwrite."""
    if path.exists() and not force:
        raise CertificateError(f"{path} already exists; pass --force to replace it (nodes "
                               "holding the old file will then be refused).")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode on O_TRUNC
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_node_key(folder: Path, name: str, *, force: bool = False) -> tuple[Path, Path]:
    """Write node ``name``'s key pair into ``folder/nodes``; returns (private, public) paths."""
    paths = CertificatePaths(Path(folder))
    check_node_name(name)
    private, public = node_keypair_bytes()
    return (write_private(paths.node_key(name), private, force=force),
            write_private(paths.node_pub(name), public, force=force))


def write_federation_certificates(
    folder: str | Path,
    request: CertificateRequest,
    *,
    force: bool = False,
    now: dt.datetime | None = None,
) -> CertificatePaths:
    """Create the CA, the SuperLink certificate and every requested node key pair.

    Parameters
    ----------
    folder : path
        Output folder (created with mode 0700).
    request : CertificateRequest
        Names and addresses for the SuperLink certificate, node names, validity.
    force : bool
        Replace existing files (otherwise :class:`CertificateError`).
    now : datetime, optional
        Issue time (UTC); defaults to the current time.

    Returns
    -------
    CertificatePaths
        Paths of the written files.
    """
    paths = CertificatePaths(Path(folder))
    targets = [paths.ca_key, paths.ca_cert, paths.server_key, paths.server_cert]
    targets += [p for n in request.nodes for p in (paths.node_key(n), paths.node_pub(n))]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise CertificateError(f"{', '.join(existing)} already exist(s); pass --force to "
                               "replace them (nodes holding the old files will be refused).")
    now = now or dt.datetime.now(dt.UTC)
    ca_key, ca_cert = create_ca(days=10 * request.days, now=now)
    server_key, server_cert = issue_server_certificate(ca_key, ca_cert, request, now=now)
    pem = serialization.Encoding.PEM
    write_private(paths.ca_key, _key_pem(ca_key), force=force)
    write_private(paths.ca_cert, ca_cert.public_bytes(pem), force=force)
    write_private(paths.server_key, _key_pem(server_key), force=force)
    write_private(paths.server_cert, server_cert.public_bytes(pem), force=force)
    for name in request.nodes:
        write_node_key(paths.folder, name, force=force)
    return paths
