"""``fedcredit keys``: the banks' key ceremony on the command line (thin over protocols.paillier.keys).

Typical ceremony (bank A generates, bank B receives)::

    fedcredit keys init-bank --name bank-b --out keys/b --passphrase-env PASS   # at B
    fedcredit keys generate --out keys/a --passphrase-env PASS                   # at A
    fedcredit keys wrap --key keys/a --recipient b-identity.pub --out to-b.wrapped
    fedcredit keys unwrap --wrapped to-b.wrapped --identity keys/b --out keys/b \
        --expected-fingerprint <hex announced by A>
    fedcredit keys fingerprint keys/b        # compare with A over a trusted channel

Signing keys (every bank, every run; the coordinator refuses unsigned updates)::

    fedcredit keys init-signing --name bank-0 --bank-index 0 --out keys/bank-0   # at each bank
    fedcredit keys signing-registry --out keys/signing-registry.json b0.pub b1.pub ...

Only ``paillier.pub`` ever goes to the coordinator. Every expected failure prints one line
and exits with status 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from federation.run.folder import (
    IDENTITY_PRIVATE_FILE,
    IDENTITY_PUBLIC_FILE,
    PAILLIER_PRIVATE_FILE,
    PAILLIER_PUBLIC_FILE,
    SIGNING_KEY_FILE,
    SIGNING_PUBLIC_FILE,
)
from federation.run.signing_keys import (
    new_signing_key,
    registry_to_bytes,
    signing_public_from_bytes,
    signing_public_to_bytes,
)
from protocols.errors import FedCreditError
from protocols.paillier.keys import (
    DEFAULT_KEY_BITS,
    MIN_KEY_BITS,
    check_key_size,
    generate_identity,
    generate_paillier_keypair,
    identity_public_from_bytes,
    identity_public_to_bytes,
    key_fingerprint,
    open_identity,
    open_private_key,
    public_key_from_bytes,
    public_key_to_bytes,
    seal_identity,
    seal_private_key,
    unwrap_private_key,
    wrap_private_key,
)

__all__ = ["keys_app"]

DEFAULT_PASSPHRASE_ENV = "FEDCREDIT_KEY_PASSPHRASE"
IDENTITY_KEY_FILE = IDENTITY_PRIVATE_FILE
IDENTITY_PUB_FILE = IDENTITY_PUBLIC_FILE
PAILLIER_KEY_FILE = PAILLIER_PRIVATE_FILE
PAILLIER_PUB_FILE = PAILLIER_PUBLIC_FILE

keys_app = typer.Typer(
    help="Key ceremony for the banks' shared Paillier key (the coordinator never holds it).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

_PASS_HELP = "Environment variable holding the passphrase (never pass it on the command line)."
_FORCE_HELP = "Overwrite existing files."


class _UsageError(Exception):
    """A CLI-level problem (missing variable, existing file) reported in one line."""


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (FedCreditError, _UsageError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc.strerror or exc))}: "
                          f"{escape(str(exc.filename))}",
                          highlight=False)
        raise typer.Exit(code=2) from None


def _passphrase(env_var: str) -> str:
    value = os.environ.get(env_var)
    if not value:
        raise _UsageError(f"environment variable {env_var} is not set; export the passphrase "
                          "there (or name another variable with --passphrase-env)")
    return value


def _write(files: list[tuple[Path, bytes, bool]], *, force: bool) -> None:
    """Write ``(path, data, private)`` entries; private files get mode 0600."""
    for path, _, _ in files:
        if path.exists() and not force:
            raise _UsageError(f"{path} already exists; move it away or pass --force")
    for path, data, private in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        if private:
            os.fchmod(fd, 0o600)  # also over an existing file of another mode (--force)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def _min_bits(insecure_test_key: bool) -> int:
    """The smallest Paillier key a command accepts (any size with ``--insecure-test-key``)."""
    return MIN_KEY_BITS if insecure_test_key else DEFAULT_KEY_BITS


def _in_dir(path: Path, name: str) -> Path:
    return path / name if path.is_dir() else path


@keys_app.command("init-bank")
def init_bank(
    name: str = typer.Option(..., help="Bank name (letters, digits, '_', '.', '-')."),
    out: Path = typer.Option(..., help="Folder for identity.key (sealed) and identity.pub."),
    passphrase_env: str = typer.Option(DEFAULT_PASSPHRASE_ENV, help=_PASS_HELP),
    force: bool = typer.Option(False, help=_FORCE_HELP),
) -> None:
    """Create this bank's X25519 identity (receives the wrapped Paillier key)."""
    with _one_line_errors():
        identity = generate_identity()
        sealed = seal_identity(name, identity, _passphrase(passphrase_env))
        public = identity_public_to_bytes(name, identity)
        _write([(out / IDENTITY_KEY_FILE, sealed, True), (out / IDENTITY_PUB_FILE, public, False)],
               force=force)
    console.print(f"identity of {name}: {identity_public_from_bytes(public).public_key_hex}")
    console.print(f"send {out / IDENTITY_PUB_FILE} to the bank that generates the key")


@keys_app.command("generate")
def generate(
    out: Path = typer.Option(..., help="Folder for paillier.key (sealed) and paillier.pub."),
    bits: int = typer.Option(DEFAULT_KEY_BITS, help="Modulus size in bits (2048 or more)."),
    passphrase_env: str = typer.Option(DEFAULT_PASSPHRASE_ENV, help=_PASS_HELP),
    insecure_test_key: bool = typer.Option(False, help="Allow < 2048 bits (tests only)."),
    force: bool = typer.Option(False, help=_FORCE_HELP),
) -> None:
    """Generate the banks' shared Paillier key pair and seal the private key at rest."""
    with _one_line_errors():
        passphrase = _passphrase(passphrase_env)
        public_key, private_key = generate_paillier_keypair(
            bits, allow_insecure_test_key=insecure_test_key)
        _write([(out / PAILLIER_KEY_FILE, seal_private_key(private_key, passphrase), True),
                (out / PAILLIER_PUB_FILE, public_key_to_bytes(public_key), False)], force=force)
    console.print(f"fingerprint {key_fingerprint(public_key)}")


@keys_app.command("wrap")
def wrap(
    key: Path = typer.Option(..., help="Folder (or file) with the sealed paillier.key."),
    recipient: Path = typer.Option(..., help="The receiving bank's identity.pub."),
    out: Path = typer.Option(..., help="File to write the wrapped key to."),
    passphrase_env: str = typer.Option(DEFAULT_PASSPHRASE_ENV, help=_PASS_HELP),
    force: bool = typer.Option(False, help=_FORCE_HELP),
    insecure_test_key: bool = typer.Option(False, help="Allow < 2048 bits (tests only)."),
) -> None:
    """Wrap the private key for another bank's identity (X25519 + HKDF + AES-GCM)."""
    with _one_line_errors():
        private_key = open_private_key(_in_dir(key, PAILLIER_KEY_FILE).read_bytes(),
                                       _passphrase(passphrase_env))
        check_key_size(private_key.public_key, role="the Paillier key to wrap",
                       min_bits=_min_bits(insecure_test_key))
        identity = identity_public_from_bytes(recipient.read_bytes())
        _write([(out, wrap_private_key(private_key, identity.public_key), False)], force=force)
    fingerprint = key_fingerprint(private_key.public_key)
    console.print(f"wrapped key {fingerprint} for {identity.name}; announce the fingerprint "
                  "over a separate channel")


@keys_app.command("unwrap")
def unwrap(
    wrapped: Path = typer.Option(..., help="Wrapped key file received from the key owner."),
    identity: Path = typer.Option(..., help="Folder (or file) with this bank's identity.key."),
    out: Path = typer.Option(..., help="Folder for paillier.key (sealed) and paillier.pub."),
    passphrase_env: str = typer.Option(DEFAULT_PASSPHRASE_ENV, help=_PASS_HELP),
    expected_fingerprint: str | None = typer.Option(
        None, help="Fingerprint announced by the key owner (strongly recommended)."),
    force: bool = typer.Option(False, help=_FORCE_HELP),
    insecure_test_key: bool = typer.Option(False, help="Allow < 2048 bits (tests only)."),
) -> None:
    """Unwrap a received private key and seal it at rest under this bank's passphrase."""
    with _one_line_errors():
        passphrase = _passphrase(passphrase_env)
        _, identity_key = open_identity(_in_dir(identity, IDENTITY_KEY_FILE).read_bytes(),
                                        passphrase)
        private_key = unwrap_private_key(wrapped.read_bytes(), identity_key,
                                         expected_fingerprint=expected_fingerprint)
        check_key_size(private_key.public_key, role="the unwrapped Paillier key",
                       min_bits=_min_bits(insecure_test_key))
        _write([(out / PAILLIER_KEY_FILE, seal_private_key(private_key, passphrase), True),
                (out / PAILLIER_PUB_FILE, public_key_to_bytes(private_key.public_key), False)],
               force=force)
    console.print(f"fingerprint {key_fingerprint(private_key.public_key)}")
    if expected_fingerprint is None:
        err_console.print("warning: no --expected-fingerprint given; compare the fingerprint "
                          "above with the key owner's before using the key")


@keys_app.command("fingerprint")
def fingerprint(
    path: Path = typer.Argument(..., help="paillier.pub, or a folder holding it."),
) -> None:
    """Print the SHA-256 fingerprint of a Paillier public key."""
    with _one_line_errors():
        public_key = public_key_from_bytes(_in_dir(path, PAILLIER_PUB_FILE).read_bytes())
    console.print(key_fingerprint(public_key))


@keys_app.command("init-signing")
def init_signing(
    name: str = typer.Option(..., help="Bank name (as in its node.toml [node] name)."),
    bank_index: int = typer.Option(..., help="The bank's position in the run (0..K-1)."),
    out: Path = typer.Option(..., help="The bank's own key folder (KEYS/bank-<index>)."),
    passphrase_env: str = typer.Option(DEFAULT_PASSPHRASE_ENV, help=_PASS_HELP),
    force: bool = typer.Option(False, help=_FORCE_HELP),
) -> None:
    """Create this bank's Ed25519 signing key (signs its updates and the audit heads)."""
    with _one_line_errors():
        sealed, public = new_signing_key(name, bank_index, _passphrase(passphrase_env))
        _write([(out / SIGNING_KEY_FILE, sealed, True),
                (out / SIGNING_PUBLIC_FILE, signing_public_to_bytes(public), False)], force=force)
    console.print(f"signing key of {name} (bank {bank_index}): fingerprint {public.fingerprint}")
    console.print(f"send {out / SIGNING_PUBLIC_FILE} to the registry's assembler; compare the "
                  "fingerprint over a second channel")


@keys_app.command("signing-registry")
def signing_registry(
    pubs: list[Path] = typer.Argument(..., help="Every bank's signing.pub (or its folder)."),
    out: Path = typer.Option(..., help="signing-registry.json to write."),
    force: bool = typer.Option(False, help=_FORCE_HELP),
) -> None:
    """Assemble signing-registry.json; the coordinator and every bank hold a copy."""
    with _one_line_errors():
        publics = [signing_public_from_bytes(_in_dir(p, SIGNING_PUBLIC_FILE).read_bytes())
                   for p in pubs]
        _write([(out, registry_to_bytes(publics), False)], force=force)
    for public in sorted(publics, key=lambda p: p.bank):
        console.print(f"bank {public.bank} ({escape(public.name)}): {public.fingerprint}")
