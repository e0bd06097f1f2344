"""Frames of the vertical peer stream: one AES-GCM sealed protocol message per frame.

With ``vertical-transport = "stream"`` the coordinator sends each party one Flower message per
epoch (``V_STREAM``) holding a fresh 32-byte session key and the address of a relay it runs
(``server.peer_relay``); the two parties then exchange the epoch's per-batch protocol messages
(the same bytes the message transport relays in ``V_ENCRYPT``/``V_GRADIENT``/``V_OPEN``) as
frames through that relay (``clients.peer_link``). This module is the frame format both sides
share and the socket reads they both need.

Frame: a 28-byte header (magic, version, sender, step, epoch, batch, sequence number, body
length) then the body, ``AES-GCM(key, nonce = sender || 0 || seq, payload, aad = header)``.
Sequence numbers count from 0 per sender (0 is the hello); a receiver takes frame ``n`` only
after ``n - 1``.

Security: the key reaches the parties only inside the coordinator's Flower messages (TLS in a
deployment), so an outsider on the relay's port can neither read, forge, replay, reorder nor
drop a frame unnoticed; the coordinator knows the key and sees what it saw on the message
transport (ciphertexts under the parties' own keys, masked values), no more. The payloads are
checked by the protocol steps as on the message transport.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.errors import MalformedMessageError
from protocols.vertical_lr.steps import ROLE_BANK, ROLE_CENTER

__all__ = [
    "FRAME_VERSION", "HEADER", "MAX_BODY", "KEY_BYTES", "SENDERS", "STEP_HELLO", "STEP_ENCRYPT",
    "STEP_GRADIENT", "STEP_OPEN", "STEP_NAMES", "FrameHeader", "PeerFrameError", "new_session_key",
    "seal_frame", "open_frame", "parse_header", "read_exact", "read_frame",
]

MAGIC: Final = b"FCPS"
FRAME_VERSION: Final = 1
HEADER: Final = struct.Struct(">4sBBBBIIQI")  # magic, version, sender, step, 0, epoch, batch,
#                                              seq, body length: 28 bytes
MAX_BODY: Final = 256 * 1024 * 1024
"""Largest body a party or the relay reads (a UCI batch's ciphertexts are ~0.3 MB)."""
KEY_BYTES: Final = 32
TAG_BYTES: Final = 16
SENDERS: Final = {ROLE_BANK: 1, ROLE_CENTER: 2}
ROLE_OF_SENDER: Final = {code: role for role, code in SENDERS.items()}
STEP_HELLO: Final = 0  # seq 0: "I hold the session key" (body: the role)
STEP_ENCRYPT: Final = 1  # the bank's [[d_B]] / the center's [[u_C]]
STEP_GRADIENT: Final = 2  # masked encrypted gradient for the peer
STEP_OPEN: Final = 3  # the peer's masked gradient, decrypted
STEPS: Final = (STEP_HELLO, STEP_ENCRYPT, STEP_GRADIENT, STEP_OPEN)
STEP_NAMES: Final = {STEP_HELLO: "hello", STEP_ENCRYPT: "v_encrypt", STEP_GRADIENT: "v_gradient",
                     STEP_OPEN: "v_open"}


class PeerFrameError(MalformedMessageError):
    """A frame of the peer stream is malformed, forged, out of order or not the one expected."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Who sent a frame, for which step of which batch, its place in the sender's sequence."""

    sender: str
    step: int
    epoch: int
    batch: int
    seq: int
    length: int

    def pack(self) -> bytes:
        """The 28 header bytes (also the frame's AES-GCM associated data)."""
        return HEADER.pack(MAGIC, FRAME_VERSION, SENDERS[self.sender], self.step, 0, self.epoch,
                           self.batch, self.seq, self.length)


def new_session_key() -> bytes:
    """A fresh 32-byte AES-GCM key for one epoch's stream (the coordinator draws it)."""
    return os.urandom(KEY_BYTES)


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise PeerFrameError(f"the peer stream's session key has {len(key)} bytes, not "
                             f"{KEY_BYTES}.")
    return AESGCM(key)


def _nonce(sender: str, seq: int) -> bytes:
    return bytes([SENDERS[sender], 0, 0, 0]) + seq.to_bytes(8, "big")


def parse_header(data: bytes) -> FrameHeader:
    """The header of a frame (its first :data:`HEADER` bytes), checked for shape only."""
    if len(data) != HEADER.size:
        raise PeerFrameError(f"a peer-stream header has {len(data)} bytes, not {HEADER.size}.")
    magic, version, sender, step, zero, epoch, batch, seq, length = HEADER.unpack(data)
    if magic != MAGIC or version != FRAME_VERSION or zero != 0:
        raise PeerFrameError("not a fedcredit peer-stream frame of version "
                             f"{FRAME_VERSION} (wrong magic or version).")
    if sender not in ROLE_OF_SENDER or step not in STEPS:
        raise PeerFrameError(f"a peer-stream frame names sender {sender} and step {step}; "
                             "neither may be unknown.")
    if not TAG_BYTES <= length <= MAX_BODY:
        raise PeerFrameError(f"a peer-stream frame's body of {length} bytes is outside "
                             f"{TAG_BYTES}..{MAX_BODY}.")
    return FrameHeader(ROLE_OF_SENDER[sender], step, epoch, batch, seq, length)


def seal_frame(key: bytes, *, sender: str, step: int, epoch: int, batch: int, seq: int,
               payload: bytes) -> bytes:
    """One frame: header and the payload sealed under the session key."""
    if sender not in SENDERS or step not in STEPS:
        raise PeerFrameError(f"unknown sender '{sender}' or step {step} for a peer frame.")
    header = FrameHeader(sender, step, epoch, batch, seq, len(payload) + TAG_BYTES)
    aad = header.pack()
    return aad + _aead(key).encrypt(_nonce(sender, seq), payload, aad)


def open_frame(key: bytes, header: FrameHeader, body: bytes) -> bytes:
    """The payload of a frame whose header and body were read; PeerFrameError if the key,
    the header or the body does not match (forged, altered or under another session)."""
    if len(body) != header.length:
        raise PeerFrameError("a peer-stream frame's body is shorter than its header says.")
    try:
        return _aead(key).decrypt(_nonce(header.sender, header.seq), body, header.pack())
    except InvalidTag:
        raise PeerFrameError(
            f"a peer-stream frame from the {header.sender} (step {header.step}, seq "
            f"{header.seq}) does not open under this epoch's session key: forged, altered "
            "or from another session.") from None


def read_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``; ConnectionError if it closes first."""
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the peer stream closed mid-frame.")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> tuple[FrameHeader, bytes, bytes]:
    """One frame from ``sock``: its parsed header, the raw header bytes and the body."""
    raw = read_exact(sock, HEADER.size)
    header = parse_header(raw)
    return header, raw, read_exact(sock, header.length)
