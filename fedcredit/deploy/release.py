"""The federation's release key: which app bundles (FABs) a node runs.

Flower 1.42 lets a SuperNode run only FABs signed by a key it trusts
(``flower-supernode --trusted-entities FILE``). What it checks
(``flwr/supernode/start_client_internal.py``, ``_pull_and_store_message`` and ``_verify_fab``):

* the FAB's ``verifications`` must hold ``valid_license`` (else: "App verification is not
  supported by the connected SuperLink", an error reply, the ClientApp never starts);
* one entry ``{public_key_id: '{"signature": ..., "signed_at": ...}'}`` whose key id is in
  the trusted-entities YAML (``{key_id: "ssh-ed25519 AAAA..."}``) and whose Ed25519
  signature verifies over ``signed_at.to_bytes(8, "big") + sha256(fab)``
  (``flwr/supercore/primitives/asymmetric_ed25519.py``, ``create_message_to_sign``); the
  signature is unpadded base64url, as ``flwr app review`` writes it.

The SuperLink fills ``verifications`` only for an app it fetched from an app registry
(``flwr run @publisher/app==x.y.z``; ``flwr/superlink/servicer/control/control_handlers.py``,
``_get_remote_fab`` and ``_format_verification``). A FAB uploaded with ``flwr run DIR`` always
gets empty verifications, so a node with trusted entities refuses it whoever sends it. The
federation's registry is :mod:`fedcredit.deploy.app_registry`, which serves the signed
release written here.

Who holds what: the release private key (``release.key``) stays with whoever signs releases
(offline, like ``ca.key``); ``trusted-entities.yaml`` (public) goes to every node. The
signature covers the FAB bytes only: the run config is chosen per run by the coordinator and
checked by each bank's ``[policy]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fedcredit.deploy.certs import write_private
from fedcredit.deploy.errors import DeploymentError

SCHEMA_VERSION = 1
KEY_ID_PREFIX = "fedcredit-release-"


class ReleaseError(DeploymentError):
    """The release key or a signed release is missing, unreadable or does not verify."""


@dataclass(frozen=True, slots=True)
class ReleasePaths:
    """Files of the release key folder (``fedcredit release-key --out DIR``)."""

    root: Path

    @property
    def private_key(self) -> Path:
        """Ed25519 private key, OpenSSH format, 0600 (keep offline)."""
        return self.root / "release.key"

    @property
    def public_key(self) -> Path:
        """``ssh-ed25519 AAAA... key-id`` (public)."""
        return self.root / "release.pub"

    @property
    def trusted_entities(self) -> Path:
        """The YAML file every SuperNode gets with ``--trusted-entities`` (public)."""
        return self.root / "trusted-entities.yaml"


@dataclass(frozen=True, slots=True)
class SignedRelease:
    """A signed app bundle: ``app.fab`` and ``release.json`` in one folder.

    ``app_spec`` is what ``flwr run`` names (``@publisher/name==version``); ``signature`` is
    unpadded base64url over ``signed_at`` (8 bytes, big-endian) followed by the FAB's SHA-256.
    """

    folder: Path
    app_spec: str
    fab_sha256: str
    key_id: str
    signed_at: int
    signature: str
    schema_version: int = SCHEMA_VERSION

    @property
    def fab(self) -> Path:
        """The bundle's bytes."""
        return self.folder / "app.fab"

    def verification(self) -> dict[str, str | int]:
        """The entry an app registry returns in ``verifications`` (Flower Hub's shape)."""
        return {"public_key_id": self.key_id, "signature": self.signature,
                "signed_at": self.signed_at}


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """A stable id of the key: prefix + the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:16]


def write_release_key(folder: Path, *, force: bool = False) -> ReleasePaths:
    """Create a fresh Ed25519 release key, its public half and ``trusted-entities.yaml``."""
    paths = ReleasePaths(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = ed25519.Ed25519PrivateKey.generate()
    ident = key_id(private.public_key())
    openssh = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode()
    write_private(paths.private_key, private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()), force=force)
    write_private(paths.public_key, f"{openssh} {ident}\n".encode(), force=force)
    write_private(paths.trusted_entities, f'{ident}: "{openssh}"\n'.encode(), force=force)
    return paths


def load_release_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (OpenSSH format)."""
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read the release key {path} ({exc}); create one with "
                           "`fedcredit release-key --out DIR`.") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ReleaseError(f"{path} is not an Ed25519 key; Flower verifies Ed25519 "
                           "signatures only (`fedcredit release-key` makes one).")
    return key


def message_to_sign(fab: bytes, signed_at: int) -> bytes:
    """What Flower 1.42 verifies: ``signed_at`` (8 bytes, big-endian) + SHA-256 of the FAB."""
    return signed_at.to_bytes(8, "big") + hashlib.sha256(fab).digest()


def app_spec(app_dir: Path) -> str:
    """``@publisher/name==version`` of the app in ``app_dir`` (from its ``pyproject.toml``)."""
    data = tomllib.loads((app_dir / "pyproject.toml").read_text(encoding="utf-8"))
    return (f"@{data['tool']['flwr']['app']['publisher']}/{data['project']['name']}"
            f"=={data['project']['version']}")


def sign_app(app_dir: Path, key_file: Path, out: Path, *, now: float | None = None) -> SignedRelease:
    """Bundle the app in ``app_dir`` as Flower does (``flwr build``), sign it, write ``out``.

    ``out`` gets ``app.fab`` and ``release.json``; the registry serves them as they are.
    """
    from flwr.cli.build import build_fab_from_disk

    key = load_release_key(key_file)
    fab = build_fab_from_disk(app_dir)
    signed_at = int(time.time() if now is None else now)
    signature = base64.urlsafe_b64encode(key.sign(message_to_sign(fab, signed_at)))
    release = SignedRelease(folder=out, app_spec=app_spec(app_dir),
                            fab_sha256=hashlib.sha256(fab).hexdigest(),
                            key_id=key_id(key.public_key()), signed_at=signed_at,
                            signature=signature.rstrip(b"=").decode("ascii"))
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    release.fab.write_bytes(fab)
    (out / "release.json").write_text(json.dumps({
        "schema_version": SCHEMA_VERSION, "app_spec": release.app_spec,
        "fab_sha256": release.fab_sha256, **release.verification()}, indent=2) + "\n")
    return release


def read_release(folder: Path) -> SignedRelease:
    """The signed release in ``folder``; its FAB must match the recorded hash."""
    try:
        data = json.loads((folder / "release.json").read_text(encoding="utf-8"))
        release = SignedRelease(folder=folder, app_spec=str(data["app_spec"]),
                                fab_sha256=str(data["fab_sha256"]), key_id=str(data["public_key_id"]),
                                signed_at=int(data["signed_at"]), signature=str(data["signature"]))
        fab = release.fab.read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise ReleaseError(f"{folder} holds no readable signed release ({exc}); sign the app "
                           "with `fedcredit sign-app`.") from exc
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ReleaseError(f"{folder}/release.json has schema_version "
                           f"{data.get('schema_version')}, expected {SCHEMA_VERSION}; sign again.")
    if hashlib.sha256(fab).hexdigest() != release.fab_sha256:
        raise ReleaseError(f"{release.fab} does not match release.json's fab_sha256; sign again.")
    return release


def verify_release(release: SignedRelease, public_key: ed25519.Ed25519PublicKey) -> None:
    """Check the signature as a SuperNode does (raises :class:`ReleaseError`)."""
    pad = "=" * (-len(release.signature) % 4)
    try:
        public_key.verify(base64.urlsafe_b64decode(release.signature + pad),
                          message_to_sign(release.fab.read_bytes(), release.signed_at))
    except InvalidSignature as exc:
        raise ReleaseError(f"the signature of {release.fab} does not verify with key "
                           f"{key_id(public_key)}; sign it with the federation's release key.") from exc
