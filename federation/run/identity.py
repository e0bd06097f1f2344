"""The run's identity, recorded by the run itself: release, start and end time, data hash, run id.

A validation report must say which release made a run, when, on which data, without guessing
afterwards (a file found later at the same path need not be the file the run read). So each
writer of ``results.json`` records what it knows when it runs
(:class:`~federation.run.results.RunIdentity`):

* a simulation (``fedcredit simulate`` / ``fedcredit vertical``) reads the data files itself,
  so it records their SHA-256 (:func:`file_sha256`) when it reads them;
* a deployed coordinator holds no data: it records the release, the times and the run id,
  never a hash of a bank's file (that digest would leave the bank and identify its data).

Time is passed in (``now``) so tests are deterministic; it defaults to the UTC clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Final

from federation.run.results import RunIdentity

DISTRIBUTION: Final = "fedcredit"
STAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
CHUNK: Final = 1 << 20
DATA_SET: Final = "data set"
BANK_FILE: Final = "bank file"
CENTER_FILE: Final = "credit-center file"
"""Roles of the data files in ``data_sha256`` (the report's names for them)."""
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(tz=UTC)


def utc_stamp(moment: datetime) -> str:
    """``moment`` as an ISO 8601 UTC stamp to the second, e.g. ``2026-12-07T09:20:28Z``."""
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def fedcredit_version() -> str | None:
    """The installed fedcredit release (None when not installed as a package)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def file_sha256(path: str) -> str | None:
    """SHA-256 of the file ``path`` names (an embedded data set's name: its packaged file);
    None when it cannot be read.

    Security: the digest identifies the whole file without revealing a row; call it only
    where the file is read anyway (a simulation), never to send a bank's digest elsewhere.
    """
    from importlib.resources import files

    from federation.data.embedded import PACKAGE, find_embedded  # pandas: only when hashing

    embedded = find_embedded(path)
    try:
        if embedded is not None:
            return hashlib.sha256(files(PACKAGE).joinpath(embedded.file).read_bytes()).hexdigest()
        digest = hashlib.sha256()
        with Path(path).open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def data_hashes(files_by_role: Mapping[str, str]) -> dict[str, str]:
    """``{role: SHA-256}`` of each readable file (e.g. ``{"data set": path}``)."""
    hashes = {role: file_sha256(path) for role, path in files_by_role.items() if path}
    return {role: digest for role, digest in hashes.items() if digest is not None}


def run_identity(*, run_id: str | None, started: datetime, data_sha256: Mapping[str, str] | None
                 = None, now: Clock = utc_now) -> RunIdentity:
    """The identity of a run that started at ``started`` and ends now (``now()``).

    ``data_sha256`` only where the writer read the data itself (a simulation)."""
    return RunIdentity(run_id=run_id or None, fedcredit_version=fedcredit_version(),
                       started_utc=utc_stamp(started), finished_utc=utc_stamp(now()),
                       data_sha256=dict(data_sha256) if data_sha256 else None)
