"""A party's end of the vertical peer stream: connect to the coordinator's relay, send and
receive sealed frames in order (``federation.wire.peer_frames``).

Security: the node connects only to a relay host its own policy lists (``[policy]
peer-relay-hosts``, checked by the handler with :func:`federation.run.policy.check_relay_host`),
so a deviating coordinator cannot point it at another machine; it takes a frame only from its
peer, of the step, epoch and batch it waits for, as the next in the peer's sequence and sealed
under the epoch's session key, so the relay (or anyone on the path) can drop a frame or end the
stream, which fails the epoch, but cannot alter, replay or reorder one unnoticed.
"""

from __future__ import annotations

import socket
from types import TracebackType

from federation.wire.peer_frames import (
    STEP_HELLO,
    PeerFrameError,
    open_frame,
    read_frame,
    seal_frame,
)
from federation.wire.vertical import ROLE_BANK, ROLE_CENTER

__all__ = ["PeerLink", "PeerStreamError", "CONNECT_TIMEOUT_S", "RECEIVE_TIMEOUT_S"]

CONNECT_TIMEOUT_S = 30.0
RECEIVE_TIMEOUT_S = 900.0
"""Longest wait for the peer's next frame (a step of a large batch takes seconds)."""


class PeerStreamError(PeerFrameError):
    """The peer stream failed: the relay is unreachable or closed, or a frame was refused."""


class PeerLink:
    """This party's connection to the relay for one epoch (a context manager)."""

    def __init__(self, role: str, key: bytes, host: str, port: int, *,
                 receive_timeout_s: float = RECEIVE_TIMEOUT_S) -> None:
        self.role, self.key = role, key
        self.peer = ROLE_CENTER if role == ROLE_BANK else ROLE_BANK
        try:
            self.sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise PeerStreamError(f"the {role} cannot reach the peer-stream relay at "
                                  f"{host:.64}:{port} ({exc.strerror or type(exc).__name__}).") \
                from None
        self.sock.settimeout(receive_timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sent = 0
        self.expected = 1  # the relay keeps the peer's hello (seq 0)
        self.bytes_sent = self.bytes_received = 0
        self._send(STEP_HELLO, 0, 0, role.encode())

    def __enter__(self) -> PeerLink:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """End this side of the stream (the relay then ends the peer's)."""
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, step: int, epoch: int, batch: int, payload: bytes) -> None:
        frame = seal_frame(self.key, sender=self.role, step=step, epoch=epoch, batch=batch,
                           seq=self.sent, payload=payload)
        try:
            self.sock.sendall(frame)
        except OSError as exc:
            raise PeerStreamError(f"the {self.role} could not send step {step} of batch "
                                  f"{batch} to the relay ({type(exc).__name__}).") from None
        self.sent += 1
        self.bytes_sent += len(frame)

    def send(self, step: int, epoch: int, batch: int, payload: bytes) -> None:
        """Send this party's protocol message of ``step`` for ``(epoch, batch)``."""
        self._send(step, epoch, batch, payload)

    def receive(self, step: int, epoch: int, batch: int) -> bytes:
        """The peer's protocol message of ``step`` for ``(epoch, batch)``, next in its order."""
        try:
            header, raw, body = read_frame(self.sock)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise PeerStreamError(
                f"the {self.role} lost the peer stream waiting for the {self.peer}'s step "
                f"{step} of batch {batch} ({type(exc).__name__}): the peer or the relay "
                "stopped.") from None
        wanted = (self.peer, step, epoch, batch, self.expected)
        got = (header.sender, header.step, header.epoch, header.batch, header.seq)
        if got != wanted:
            raise PeerStreamError(f"the {self.role} expected frame (sender, step, epoch, batch, "
                                  f"seq) = {wanted} and received {got}.")
        payload = open_frame(self.key, header, body)
        self.expected += 1
        self.bytes_received += len(raw) + len(body)
        return payload
