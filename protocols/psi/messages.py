"""Wire messages of ECDH-PSI and their bytes serde.

Three messages cross the wire, one per round (see ``protocols.psi.ecdh`` for the steps):

1. ``initiator-blinded`` (initiator -> responder): ``blinded`` = ``a * H(x)`` for the
   initiator's identifiers ``x``, sorted.
2. ``responder-reply`` (responder -> initiator): ``double_blinded`` = ``b * (a * H(x))`` in the
   order received, and ``blinded`` = ``b * H(y)`` for the responder's identifiers, sorted.
3. ``initiator-return`` (initiator -> responder): ``double_blinded`` = ``a * (b * H(y))`` in the
   order received.

Every message names the scheme, the schema version, the session id and the salt, so a message
of another session (replay, straggler) is rejected before its points are used. Messages carry
only blinded points: no identifier, hash or count other than the set sizes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.byte_reader import ByteReader
from protocols.errors import MalformedMessageError
from protocols.psi.blinding import point_count

PSI_SCHEMA_VERSION = 1
PSI_SCHEME = "ecdh-psi-x25519-sha256-v1"
SESSION_ID_SIZE = 16
SALT_SIZE = 32

STAGE_INITIATOR_BLINDED = "initiator-blinded"
STAGE_RESPONDER_REPLY = "responder-reply"
STAGE_INITIATOR_RETURN = "initiator-return"
PSI_STAGES = (STAGE_INITIATOR_BLINDED, STAGE_RESPONDER_REPLY, STAGE_INITIATOR_RETURN)

_MAGIC = b"FCPSI"
_HEADER = struct.Struct(">5sHBB")  # magic, schema version, stage index, scheme length
_LENGTH = struct.Struct(">Q")


def _check_common(schema_version: int, scheme: str, session_id: bytes, salt: bytes) -> None:
    """Validate the fields every PSI record shares; raise TypeError / ValueError."""
    if schema_version != PSI_SCHEMA_VERSION:
        raise ValueError(f"PSI schema_version {schema_version} is not supported; this node "
                         f"speaks version {PSI_SCHEMA_VERSION}: upgrade the older party")
    if scheme != PSI_SCHEME:
        raise ValueError(f"PSI scheme {scheme!r} is not supported; both parties must use "
                         f"{PSI_SCHEME!r}")
    for name, value, size in (("session_id", session_id, SESSION_ID_SIZE),
                              ("salt", salt, SALT_SIZE)):
        if not isinstance(value, bytes):
            raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
        if len(value) != size:
            raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


@dataclass(frozen=True, slots=True)
class PsiSession:
    """Public parameters of one PSI run, chosen by the initiator with a CSPRNG.

    ``session_id`` names the run in every message; ``salt`` enters the identifier hash, so
    points are never comparable across sessions. Neither is secret.
    """

    session_id: bytes
    salt: bytes
    scheme: str = PSI_SCHEME
    schema_version: int = PSI_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.schema_version, self.scheme, self.session_id, self.salt)


@dataclass(frozen=True, slots=True)
class PsiMessage:
    """One PSI message: the session it belongs to and concatenated 32-byte points.

    Attributes
    ----------
    stage : str
        One of :data:`PSI_STAGES`.
    blinded : bytes
        The sender's own identifiers, blinded once, sorted (empty in ``initiator-return``).
    double_blinded : bytes
        The receiver's points blinded again, in the order received (empty in round 1).
    """

    stage: str
    session_id: bytes
    salt: bytes
    blinded: bytes = b""
    double_blinded: bytes = b""
    scheme: str = PSI_SCHEME
    schema_version: int = PSI_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.schema_version, self.scheme, self.session_id, self.salt)
        if self.stage not in PSI_STAGES:
            raise ValueError(f"unknown PSI stage {self.stage!r}; expected one of {PSI_STAGES}")
        for name in ("blinded", "double_blinded"):
            if not isinstance(getattr(self, name), bytes):
                raise TypeError(f"{name} must be bytes, got {type(getattr(self, name)).__name__}")
            point_count(getattr(self, name))
        if self.stage == STAGE_INITIATOR_BLINDED and self.double_blinded:
            raise ValueError("an initiator-blinded message carries no double-blinded points")
        if self.stage == STAGE_INITIATOR_RETURN and self.blinded:
            raise ValueError("an initiator-return message carries no singly blinded points")

    @property
    def session(self) -> PsiSession:
        """The session this message belongs to."""
        return PsiSession(self.session_id, self.salt, self.scheme, self.schema_version)


def psi_message_to_bytes(message: PsiMessage) -> bytes:
    """Serialise a :class:`PsiMessage` (big-endian lengths, no padding)."""
    scheme = message.scheme.encode("ascii")
    return b"".join((
        _HEADER.pack(_MAGIC, message.schema_version, PSI_STAGES.index(message.stage),
                     len(scheme)),
        scheme, message.session_id, message.salt,
        _LENGTH.pack(len(message.blinded)), message.blinded,
        _LENGTH.pack(len(message.double_blinded)), message.double_blinded,
    ))


def psi_message_from_bytes(data: bytes) -> PsiMessage:
    """Parse bytes made by :func:`psi_message_to_bytes`.

    Raises
    ------
    MalformedMessageError
        Bad magic, truncated or trailing bytes, unknown stage, scheme or version.
    MalformedPointError
        A point field whose length is not a multiple of 32 bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a PSI message is bytes, got {type(data).__name__}")
    reader = ByteReader(data, "PSI message")
    magic, version, stage_index, scheme_size = _HEADER.unpack(reader.take(_HEADER.size))
    if magic != _MAGIC:
        raise MalformedMessageError("not a fedcredit PSI message (bad magic); check the sender")
    if stage_index >= len(PSI_STAGES):
        raise MalformedMessageError(f"unknown PSI stage index {stage_index}; upgrade this node")
    try:
        scheme = reader.take(scheme_size).decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedMessageError("PSI scheme name is not ASCII; check the sender") from exc
    session_id, salt = reader.take(SESSION_ID_SIZE), reader.take(SALT_SIZE)
    blinded = reader.take(reader.uint(_LENGTH.size))
    double_blinded = reader.take(reader.uint(_LENGTH.size))
    reader.finish()
    try:
        return PsiMessage(PSI_STAGES[stage_index], session_id, salt, blinded, double_blinded,
                          scheme, version)
    except (TypeError, ValueError) as exc:
        raise MalformedMessageError(f"invalid PSI message: {exc}") from exc
