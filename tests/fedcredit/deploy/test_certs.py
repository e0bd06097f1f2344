"""`fedcredit certs`: CA, SuperLink certificate (SANs), node keys in Flower's format, 0600."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from fedcredit.cli.deploy import register
from fedcredit.deploy.certs import (
    CertificatePaths,
    CertificateRequest,
    write_federation_certificates,
    write_node_key,
)
from fedcredit.deploy.errors import CertificateError, TLSHandshakeError
from fedcredit.deploy.tls_check import check_tls

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> CertificatePaths:
    request = CertificateRequest(hosts=("center.example.org",), ips=("10.1.2.3",),
                                 nodes=("bank-0", "bank-1"))
    return write_federation_certificates(tmp_path_factory.mktemp("certs") / "fed", request)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_names_every_address_nodes_dial(issued: CertificatePaths) -> None:
    san = _cert(issued.server_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"center.example.org", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ("10.1.2.3", "127.0.0.1", "::1")}


def test_server_certificate_is_signed_by_the_ca_for_server_auth_only(
    issued: CertificatePaths,
) -> None:
    ca, server = _cert(issued.ca_cert), _cert(issued.server_cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_every_file_is_private(issued: CertificatePaths) -> None:
    files = [p for p in issued.folder.rglob("*") if p.is_file()]
    assert len(files) == 4 + 2 * 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (issued.folder, issued.folder / "nodes"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_node_keys_are_what_flower_loads(issued: CertificatePaths) -> None:
    private = load_ssh_private_key(issued.node_key("bank-0").read_bytes(), None)
    public = load_ssh_public_key(issued.node_pub("bank-0").read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp384r1"
    assert private.public_key().public_numbers() == public.public_numbers()
    other = load_ssh_public_key(issued.node_pub("bank-1").read_bytes())
    assert other.public_numbers() != public.public_numbers()


def test_existing_files_are_never_overwritten_silently(tmp_path: Path) -> None:
    write_federation_certificates(tmp_path, CertificateRequest(), now=NOW)
    before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(CertificateError, match="--force"):
        write_federation_certificates(tmp_path, CertificateRequest())
    assert (tmp_path / "ca.pem").read_bytes() == before
    write_federation_certificates(tmp_path, CertificateRequest(), force=True)
    assert (tmp_path / "ca.pem").read_bytes() != before
    write_node_key(tmp_path, "bank-7")
    with pytest.raises(CertificateError, match="already exists"):
        write_node_key(tmp_path, "bank-7")


def test_validity_follows_the_clock_passed_in(tmp_path: Path) -> None:
    paths = write_federation_certificates(tmp_path, CertificateRequest(days=30), now=NOW)
    server = _cert(paths.server_cert)
    assert server.not_valid_after_utc == NOW + dt.timedelta(days=30)
    assert _cert(paths.ca_cert).not_valid_after_utc == NOW + dt.timedelta(days=300)


@pytest.mark.parametrize("kwargs, setting", [
    ({"hosts": ("not a host",)}, "--host"), ({"ips": ("10.0.0.300",)}, "--ip"),
    ({"nodes": ("bank-0", "bank-0")}, "distinct"), ({"nodes": ("../evil",)}, "node name"),
    ({"days": 0}, "--days"),
])
def test_bad_requests_name_the_option(kwargs: dict, setting: str) -> None:
    with pytest.raises(ValueError, match=setting):
        CertificateRequest(**kwargs)


def _tls_server(paths: CertificatePaths) -> tuple[int, threading.Thread]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths.server_cert, paths.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            for _ in range(2):
                conn, _ = listener.accept()
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_python_tls_accepts_the_chain_and_rejects_another_ca(
    issued: CertificatePaths, tmp_path: Path,
) -> None:
    other = write_federation_certificates(tmp_path / "other", CertificateRequest())
    port, thread = _tls_server(issued)
    check_tls(f"127.0.0.1:{port}", issued.ca_cert)  # strict default verification passes
    with pytest.raises(TLSHandshakeError, match="not signed by the CA in .*other/ca.pem"):
        check_tls(f"127.0.0.1:{port}", other.ca_cert)
    thread.join(timeout=5)


def test_cli_certs_and_node_key(tmp_path: Path) -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["certs", "--out", str(tmp_path / "c"), "--host", "link.bank.cn",
                              "--ip", "192.168.7.2", "--banks", "2", "--node", "center"])
    assert res.exit_code == 0, res.output
    assert "link.bank.cn" in res.output and "192.168.7.2" in res.output
    assert (tmp_path / "c" / "nodes" / "center.pub").exists()
    assert (tmp_path / "c" / "nodes" / "bank-1.key").exists()
    res = runner.invoke(app, ["node-key", "--name", "bank-9", "--out", str(tmp_path / "b9")])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE((tmp_path / "b9" / "nodes" / "bank-9.key").stat().st_mode) == 0o600
    res = runner.invoke(app, ["certs", "--out", str(tmp_path / "d"), "--ip", "nope"])
    assert isinstance(res.exception, CertificateError) and "--ip" in str(res.exception)
