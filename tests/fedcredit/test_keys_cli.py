"""``fedcredit keys`` sub-app: full ceremony through the CLI, and one-line errors."""

from __future__ import annotations

import stat

from typer.testing import CliRunner

from fedcredit.cli.keys import keys_app

ENV = {"BANK_PASS": "a long enough passphrase"}


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(keys_app, list(args), env=env if env is not None else ENV)


def test_full_ceremony(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    res = _run("init-bank", "--name", "bank-b", "--out", str(b), "--passphrase-env", "BANK_PASS")
    assert res.exit_code == 0, res.output
    res = _run("generate", "--out", str(a), "--bits", "512", "--insecure-test-key",
               "--passphrase-env", "BANK_PASS")
    assert res.exit_code == 0, res.output
    fingerprint = res.output.split()[-1]
    assert stat.S_IMODE((a / "paillier.key").stat().st_mode) == 0o600
    res = _run("wrap", "--key", str(a), "--recipient", str(b / "identity.pub"),
               "--out", str(tmp_path / "to-b.wrapped"), "--passphrase-env", "BANK_PASS")
    assert res.exit_code == 2 and "the Paillier key to wrap has 512 bits" in res.output
    res = _run("wrap", "--key", str(a), "--recipient", str(b / "identity.pub"),
               "--out", str(tmp_path / "to-b.wrapped"), "--passphrase-env", "BANK_PASS",
               "--insecure-test-key")
    assert res.exit_code == 0, res.output
    unwrap = ["unwrap", "--wrapped", str(tmp_path / "to-b.wrapped"), "--identity", str(b),
              "--out", str(b), "--passphrase-env", "BANK_PASS",
              "--expected-fingerprint", fingerprint]
    res = _run(*unwrap)  # a short key is refused on load, not only at generation
    assert res.exit_code == 2 and "the unwrapped Paillier key has 512 bits" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = _run(*unwrap, "--insecure-test-key")
    assert res.exit_code == 0, res.output
    res = _run("fingerprint", str(b))
    assert res.exit_code == 0 and res.output.strip() == fingerprint


def test_errors_are_one_line_with_exit_2(tmp_path) -> None:
    res = _run("generate", "--out", str(tmp_path), "--passphrase-env", "MISSING_VAR")
    assert res.exit_code == 2 and "MISSING_VAR" in res.output
    res = _run("generate", "--out", str(tmp_path), "--bits", "1024",
               "--passphrase-env", "BANK_PASS")
    assert res.exit_code == 2 and "insecure" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    res = _run("fingerprint", str(tmp_path / "nothing-here.pub"))
    assert res.exit_code == 2 and "Traceback" not in res.output
    _run("generate", "--out", str(tmp_path), "--bits", "512", "--insecure-test-key",
         "--passphrase-env", "BANK_PASS")
    res = _run("generate", "--out", str(tmp_path), "--bits", "512", "--insecure-test-key",
               "--passphrase-env", "BANK_PASS")
    assert res.exit_code == 2 and "already exists" in res.output
    res = _run("wrap", "--key", str(tmp_path), "--recipient", str(tmp_path / "paillier.pub"),
               "--out", str(tmp_path / "w"), "--passphrase-env", "BANK_PASS",
               "--insecure-test-key")
    assert res.exit_code == 2 and "identity" in res.output
    res = _run("wrap", "--key", str(tmp_path), "--recipient", str(tmp_path / "paillier.pub"),
               "--out", str(tmp_path / "w"), "--passphrase-env", "OTHER",
               env={"OTHER": "the wrong passphrase"})
    assert res.exit_code == 2 and "wrong passphrase" in res.output
