"""Wire form of the SecAgg+ masking steps of a horizontal run (``secagg``, ``paillier-secagg``).

A masking session is one summation: ``<kind>:<round>`` (e.g. ``weights:3``). Every request of
the masking step (:data:`STEP_SECAGG`) and every sealed step under a masked scheme carries one
:class:`MaskingBundle` in the ``secagg`` record, and so does the bank's reply:

- request: ``advertise`` (sessions to open), ``adverts`` (every bank's key advert, to share
  keys), ``envelopes`` (the share envelopes addressed to this bank, to mask), ``survivors``
  (the survivor list to sign: the consistency step; again with the unmask request),
  ``attestations`` (with the unmask request: every survivor's signature over that list, in
  list order), ``unmask`` (this bank's unmask request);
- reply: ``adverts`` (this bank's advert) and ``signatures`` (its Ed25519 signature over
  it; the request of the share step forwards them beside the adverts) with ``lengths`` (the
  session's mask length it computed), ``shares`` (its sealed share envelopes),
  ``attestations`` (its signature over the survivor list), ``unmask`` (its unmask reply).

Messages inside are the byte codecs of :mod:`protocols.secagg.messages`; this module only
checks the container (session names, types, sizes) and never parses a share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ConfigRecord, RecordDict

from federation.wire.message_types import MessageType
from protocols.errors import MalformedMessageError

STEP_SECAGG = MessageType("query", "secagg")  # open sessions, share keys, reveal shares
KEY_SECAGG = "secagg"  # ConfigRecord: a MaskingBundle
BUNDLE_VERSION = 1
MAX_SESSIONS = 8
MAX_MESSAGES = 2**16
"""At most one advert or envelope per bank of a federation (party ids are 16-bit)."""

_SESSION = re.compile(r"^(stats|weights|counts|gradients):(\d{1,6})$")
"""``gradients:<seq>``: the boosted-tree vector sealed by level request ``seq``
(:mod:`federation.steps.tree_masking`); the other kinds: FedAvg and the trees' bins (``counts:0``)."""
_FIELDS = ("advertise", "adverts", "signatures", "lengths", "shares", "envelopes", "unmask",
           "survivors", "attestations")
_BLOB_LISTS = ("adverts", "signatures", "shares", "envelopes", "attestations")


def session_name(kind: str, round_index: int) -> str:
    """``<kind>:<round>``, the name of the session that sums ``kind`` vectors of a round."""
    name = f"{kind}:{round_index}"
    parse_session(name)
    return name


def parse_session(name: Any) -> tuple[str, int]:
    """``(kind, round)`` of a session name; MalformedMessageError for anything else."""
    match = _SESSION.match(name) if isinstance(name, str) else None
    if match is None:
        raise MalformedMessageError(f"masking session name {str(name)[:40]!r} is not "
                                    "'<stats|weights|counts|gradients>:<round>'.")
    return match.group(1), int(match.group(2))


@dataclass(frozen=True)
class MaskingBundle:
    """The masking part of one request or reply (all fields optional, keyed by session)."""

    advertise: tuple[str, ...] = ()
    adverts: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    signatures: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    """The Ed25519 signature of each advert (same order as ``adverts``)."""
    lengths: Mapping[str, int] = field(default_factory=dict)
    shares: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    envelopes: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    unmask: Mapping[str, bytes] = field(default_factory=dict)
    survivors: Mapping[str, bytes] = field(default_factory=dict)
    """The survivor list of a session (``protocols.secagg.messages.survivors_to_bytes``)."""
    attestations: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    """Signatures over the survivor list: the bank's own (reply), every survivor's (request)."""
    version: int = BUNDLE_VERSION

    def __post_init__(self) -> None:
        if self.version != BUNDLE_VERSION:
            raise MalformedMessageError(f"masking bundle version {self.version!r:.20} is not "
                                        f"{BUNDLE_VERSION}; run one fedcredit release.")
        names = set(self.advertise)
        for name in _FIELDS[1:]:
            names.update(getattr(self, name))
        if len(names) > MAX_SESSIONS:
            raise MalformedMessageError(f"masking bundle names {len(names)} sessions, at most "
                                        f"{MAX_SESSIONS}.")
        for name in names:
            parse_session(name)
        for name in _BLOB_LISTS:
            for blobs in getattr(self, name).values():
                if not isinstance(blobs, tuple) or len(blobs) > MAX_MESSAGES or \
                        not all(isinstance(b, bytes) for b in blobs):
                    raise MalformedMessageError(f"masking bundle field '{name}' must hold at "
                                                f"most {MAX_MESSAGES} byte strings a session.")
        for length in self.lengths.values():
            if isinstance(length, bool) or not isinstance(length, int) or not 0 < length < 2**31:
                raise MalformedMessageError("masking bundle field 'lengths' must hold positive "
                                            "integers.")
        for name in ("unmask", "survivors"):
            if not all(isinstance(b, bytes) for b in getattr(self, name).values()):
                raise MalformedMessageError(f"masking bundle field '{name}' must hold bytes.")

    @property
    def empty(self) -> bool:
        """Whether the bundle carries nothing."""
        return not any(getattr(self, name) for name in _FIELDS)


def bundle_to_record(bundle: MaskingBundle) -> ConfigRecord:
    """The bundle as a flat ConfigRecord (``<field>/<session>`` keys)."""
    values: dict[str, Any] = {"version": bundle.version, "advertise": list(bundle.advertise)}
    for name in _BLOB_LISTS:
        for session, blobs in getattr(bundle, name).items():
            values[f"{name}/{session}"] = list(blobs)
    for session, length in bundle.lengths.items():
        values[f"lengths/{session}"] = length
    for name in ("unmask", "survivors"):
        for session, blob in getattr(bundle, name).items():
            values[f"{name}/{session}"] = blob
    return ConfigRecord(values)


def bundle_of(content: RecordDict) -> MaskingBundle:
    """The bundle a message carries (an empty one when it carries none)."""
    if KEY_SECAGG not in content.config_records:
        return MaskingBundle()
    record = dict(content.config_records[KEY_SECAGG])
    version = record.pop("version", None)
    advertise = record.pop("advertise", [])
    if not isinstance(advertise, list) or not all(isinstance(a, str) for a in advertise):
        raise MalformedMessageError("masking bundle field 'advertise' must list session names.")
    parts: dict[str, dict[str, Any]] = {name: {} for name in _FIELDS[1:]}
    for key, value in record.items():
        name, _, session = key.partition("/")
        if name not in parts:
            raise MalformedMessageError(f"masking bundle has an unknown field {key[:40]!r}.")
        parts[name][session] = tuple(value) if isinstance(value, list) else value
    if not isinstance(version, int):
        raise MalformedMessageError("masking bundle has no version.")
    names: tuple[str, ...] = tuple(str(a) for a in advertise)
    return MaskingBundle(advertise=names, version=version, **parts)


def with_bundle(content: RecordDict, bundle: MaskingBundle) -> RecordDict:
    """``content`` with ``bundle`` added (unchanged when the bundle is empty)."""
    if not bundle.empty:
        content[KEY_SECAGG] = bundle_to_record(bundle)
    return content
