"""Per-institution API keys, stored hashed: who may call a service, and for what.

Step: every request carries ``Authorization: Bearer <key>``. The service keeps only
``sha256(key)`` per key (``service-keys.json``), with the institution the key was issued to
and its scopes:

* ``partial-score``: a bank of the federation asking the center for partial scores;
* ``score``: an application of a bank asking its own bank service for scores;
* ``operator``: the institution's operator (query history, the enterprise report).

A key is 32 random bytes (256 bits, :func:`new_api_key`), so a single fast hash suffices: a
stolen key file cannot be brute-forced back to a key, and there is no password to stretch.
Comparison is constant-time over the hash. No key -> 401; a key not in the file -> 401; a key
without the endpoint's scope -> 403.

Security assumption: keys travel only over TLS (``tls-certificate`` in the settings, or a TLS
terminator in front); a leaked key lets its holder query as that institution until its line is
removed from the file and the service restarted. docs/service.md says why keys, not mTLS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcredit.service.errors import Refusal, ServiceConfigError
from federation.run.folder import atomic_write_text

KEYS_FORMAT = "fedcredit-service-keys"
KEYS_SCHEMA_VERSION = 1
SCOPES = ("partial-score", "score", "operator")
KEY_PREFIX = "fck_"


def new_api_key() -> str:
    """A fresh random key (shown once to its holder; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """``sha256(key)`` as lowercase hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyEntry:
    """One issued key: its hash, the institution it names, and what it may do."""

    institution: str
    sha256: str
    scopes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.institution or len(self.sha256) != 64 or any(
                s not in SCOPES for s in self.scopes) or not self.scopes:
            raise ValueError(f"key entry for '{self.institution}' needs a name, a sha256 hex "
                             f"digest and scopes among {', '.join(SCOPES)}")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated institution of a request."""

    institution: str
    scopes: tuple[str, ...]

    def require(self, scope: str) -> None:
        """Refuse (403) unless the caller's key has ``scope``."""
        if scope not in self.scopes:
            raise Refusal(403, "forbidden", f"this key may not use this endpoint (needs scope "
                          f"'{scope}'); ask the operator for a key with that scope.")


class ApiKeys:
    """The hashed keys a service accepts (read once at start)."""

    def __init__(self, entries: list[ApiKeyEntry]) -> None:
        self._by_hash = {e.sha256: e for e in entries}

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """Read ``service-keys.json``; ServiceConfigError naming the file if it is not one."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != KEYS_FORMAT or doc.get("schema_version") != KEYS_SCHEMA_VERSION:
                raise ValueError(f"not a {KEYS_FORMAT} v{KEYS_SCHEMA_VERSION} file")
            entries = [ApiKeyEntry(str(k["institution"]), str(k["sha256"]),
                                   tuple(str(s) for s in k["scopes"])) for k in doc["keys"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServiceConfigError(f"{path}: unreadable API key file ({exc}); create it with "
                                     "`fedcredit service-key`.") from exc
        return cls(entries)

    def identify(self, authorization: str | None) -> Caller:
        """The institution whose key the ``Authorization`` header carries.

        Raises
        ------
        Refusal
            401 without a bearer key or with an unknown one.
        """
        if not authorization or not authorization.startswith("Bearer "):
            raise Refusal(401, "unauthenticated", "send 'Authorization: Bearer <API key>'; ask "
                          "the institution's operator for a key.")
        digest = key_hash(authorization[len("Bearer "):].strip())
        entry = self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise Refusal(401, "unknown_key", "the API key is not known here (revoked or "
                          "mistyped); ask the institution's operator for a key.")
        return Caller(entry.institution, entry.scopes)


def add_key(path: Path, institution: str, scopes: tuple[str, ...]) -> str:
    """Issue a key for ``institution`` into ``path`` (created if missing); return the key."""
    doc: dict[str, Any] = {"format": KEYS_FORMAT, "schema_version": KEYS_SCHEMA_VERSION,
                           "keys": []}
    if path.exists():
        ApiKeys.load(path)  # refuse to extend a damaged file
        doc = json.loads(path.read_text(encoding="utf-8"))
    key = new_api_key()
    entry = ApiKeyEntry(institution, key_hash(key), scopes)
    doc["keys"].append({"institution": entry.institution, "sha256": entry.sha256,
                        "scopes": list(entry.scopes)})
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return key
