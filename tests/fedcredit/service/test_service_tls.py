"""TLS serving: both services on certificates of the federation CA (``fedcredit certs``), the
bank verifying the center against the CA of its node TOML, a client verifying the bank."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fedcredit.service.testbed import ServiceProcess, build_testbed
from tests.fedcredit.service.conftest import _rows


def _use_tls(bed_folder: Path, certs: Path, center_port: int) -> None:
    for party in ("bank", "center"):
        config = bed_folder / party / "service.toml"
        text = config.read_text(encoding="utf-8").replace(
            f"http://127.0.0.1:{center_port}", f"https://127.0.0.1:{center_port}")
        config.write_text(text + f'tls-certificate = "{certs / "superlink.pem"}"\n'
                          f'tls-key = "{certs / "superlink.key"}"\n', encoding="utf-8")
    node = bed_folder / "bank" / "node.toml"
    node.write_text(node.read_text(encoding="utf-8")
                    + f'\n[keys]\nroot-certificates = "{certs / "ca.pem"}"\n', encoding="utf-8")


def test_the_services_answer_over_https_verified_by_the_federation_ca(tmp_path: Path) -> None:
    bed = build_testbed(tmp_path / "bed", enterprises=800, reload_seconds=5.0)
    certs = tmp_path / "certs"
    subprocess.run([sys.executable, "-m", "fedcredit.cli.main", "certs", "--out", str(certs)],
                   check=True, capture_output=True)
    _use_tls(bed.folder, certs, bed.center_port)
    ca = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    center = ServiceProcess(bed.center_config, bed.center_port, log=bed.folder / "center.log",
                            tls=ca).start()
    bank = ServiceProcess(bed.bank_config, bed.bank_port, log=bed.folder / "bank.log", tls=ca)
    try:
        bank.start()
        base = f"https://127.0.0.1:{bed.bank_port}"
        reply = httpx.post(base + "/v1/score", verify=ca, timeout=10,
                           headers={"Authorization": f"Bearer {bed.app_key}"},
                           json={"uscc": bed.shared_usccs[0], "purpose": "loan-approval"})
        assert reply.status_code == 200, reply.text  # bank -> center went over TLS too
        assert reply.json()["center_model_version"] == "sme-default/v1"
        center_log = _rows(bed.folder / "center" / "queries-center.db")
        assert [(r["institution"], r["uscc"], r["status"]) for r in center_log] == [
            ("bank-0", bed.shared_usccs[0], 200)]
        with pytest.raises(httpx.ConnectError):  # a client without the CA refuses the bank
            httpx.get(base + "/healthz", verify=ssl.create_default_context(), timeout=10)
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{bed.bank_port}/healthz", timeout=10)
    finally:
        bank.stop()
        center.stop()
