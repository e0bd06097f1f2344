"""Signing keys in a deployment: `fedcredit keys init-signing` at each bank, `fedcredit keys
signing-registry` for the federation; the keys load as the bank and the coordinator load them;
a run without a registry does not start (fail closed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedcredit.cli.keys import keys_app
from federation.errors import ConfigError
from federation.run.config import RunConfig
from federation.run.folder import KeyFolder
from federation.run.key_store import (
    check_bank_signing,
    load_signing_key,
    load_signing_registry,
    require_signing_registry,
)
from federation.run.signing_keys import (
    SigningPublic,
    new_signing_key,
    registry_to_bytes,
    signing_public_from_bytes,
)
from protocols.errors import KeyCeremonyError
from protocols.identity.signing import public_key_hex

PASS = {"FEDCREDIT_KEY_PASSPHRASE": "a long enough passphrase"}


def _keys(*args: str):
    return CliRunner().invoke(keys_app, list(args), env=PASS)


def test_init_signing_and_the_registry_give_what_bank_and_coordinator_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyFolder(tmp_path / "keys")
    for bank in (0, 1):
        res = _keys("init-signing", "--name", f"bank-{bank}", "--bank-index", str(bank),
                    "--out", str(keys.bank(bank).path))
        assert res.exit_code == 0, res.output
        assert stat.S_IMODE(keys.bank(bank).signing_key.stat().st_mode) == 0o600
    again = _keys("init-signing", "--name", "bank-0", "--bank-index", "0",
                  "--out", str(keys.bank(0).path))
    assert again.exit_code == 2 and "already exists" in again.output  # never overwritten
    res = _keys("signing-registry", "--out", str(keys.signing_registry),
                str(keys.bank(0).path), str(keys.bank(1).signing_public))
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("FEDCREDIT_KEY_PASSPHRASE", PASS["FEDCREDIT_KEY_PASSPHRASE"])
    registry = load_signing_registry(keys.path)
    assert registry is not None and sorted(registry) == [0, 1]
    for bank in (0, 1):
        key = load_signing_key.__wrapped__(str(keys.path), bank)  # past the lru_cache
        assert key is not None
        assert public_key_hex(key.public_key()) == public_key_hex(registry[bank])
        check_bank_signing(str(keys.path), bank)


def test_the_registry_refuses_a_bank_twice_or_a_shared_key() -> None:
    _, a = new_signing_key("bank-0", 0, "passphrase", scrypt_log2_n=10)
    _, b = new_signing_key("bank-1", 1, "passphrase", scrypt_log2_n=10)
    with pytest.raises(KeyCeremonyError, match="claim bank 0"):
        registry_to_bytes([a, SigningPublic("bank-x", 0, b.key_hex)])
    with pytest.raises(KeyCeremonyError, match="reuses another bank's signing key"):
        registry_to_bytes([a, SigningPublic("bank-1", 1, a.key_hex)])
    with pytest.raises(KeyCeremonyError, match="not a fedcredit signing.pub"):
        signing_public_from_bytes(b'{"format": "other"}')


def test_a_run_without_a_registry_does_not_start(tmp_path: Path) -> None:
    """The coordinator refuses before it waits for a single bank (no fail-open path)."""
    from server.horizontal import HorizontalRun

    class NoBanks:
        def get_nodes(self):  # pragma: no cover - must not be reached
            raise AssertionError("the coordinator waited for banks without a registry")

    for keys_dir in ("", str(tmp_path)):
        with pytest.raises(ConfigError, match="holds no signing-registry.json"):
            require_signing_registry(keys_dir)
        with pytest.raises(ConfigError, match="fedcredit keys signing-registry"):
            HorizontalRun(NoBanks(), RunConfig(keys_dir=keys_dir, out=str(tmp_path / "run")))  # type: ignore[arg-type]
