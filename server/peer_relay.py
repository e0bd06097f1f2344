"""The coordinator's relay for one epoch of the vertical peer stream (``transport = "stream"``).

The coordinator opens a :class:`PeerRelay` on a fresh session key, sends both parties its
address and the key in one ``V_STREAM`` message each, and the relay pairs the two connections
that open with a valid hello (a frame sealed under the key, ``seq`` 0, naming its sender) and
then forwards each party's frames to the other unchanged (``federation.wire.peer_frames``).
It counts frames and bytes; it never opens a frame after the hello.

Security: an honest-but-curious coordinator sees here what it relays on the message transport
(the same protocol bytes, sealed under a key it drew); a connection without the key (an outsider
holding only the CA certificate) is closed at its hello and cannot take a party's place; a party
may only send frames in its own name. When one side closes or fails, the other is shut down too,
so neither waits for a peer that is gone.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

from federation.wire.peer_frames import (
    SENDERS,
    STEP_HELLO,
    FrameHeader,
    PeerFrameError,
    open_frame,
    read_frame,
)

__all__ = ["PeerRelay", "HELLO_TIMEOUT_S"]

HELLO_TIMEOUT_S = 120.0
"""How long the relay waits for both parties to connect and say hello before giving up."""

FrameObserver = Callable[[FrameHeader], None]


class PeerRelay:
    """One epoch's relay between the bank and the center (a context manager).

    ``host`` is where it listens and what the parties are told to connect to; ``port`` 0 takes
    a free port (:attr:`port` says which). ``on_frame`` sees each forwarded frame's header.
    """

    def __init__(self, key: bytes, *, host: str = "127.0.0.1", port: int = 0,
                 on_frame: FrameObserver | None = None,
                 hello_timeout_s: float = HELLO_TIMEOUT_S) -> None:
        self.key, self.host = key, host
        self.on_frame = on_frame
        self.hello_timeout_s = hello_timeout_s
        self.listener = socket.create_server((host, port))
        self.port: int = self.listener.getsockname()[1]
        self.parties: dict[str, socket.socket] = {}
        self.refused = 0
        """Connections closed at their hello (no key, a taken or unknown role, garbage)."""
        self.bytes_forwarded = 0
        self.frames_forwarded = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._paired = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> PeerRelay:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Accept the parties in a background thread."""
        self._spawn(self._accept, "peer-relay-accept")

    def close(self) -> None:
        """Stop listening, close both parties' connections, wait for the threads."""
        self._closed.set()
        _close(self.listener)
        with self._lock:
            conns = list(self.parties.values())
        for conn in conns:
            _close(conn)
        for thread in list(self._threads):
            thread.join(timeout=5.0)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------ pairing
    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        deadline = threading.Timer(self.hello_timeout_s, self._hello_deadline)
        deadline.daemon = True
        deadline.start()
        try:
            while not self._closed.is_set() and not self._paired.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._spawn(self._hello, "peer-relay-hello", conn)  # a silent one blocks no one
        finally:
            deadline.cancel()
            _close(self.listener)

    def _hello(self, conn: socket.socket) -> None:
        """Keep ``conn`` as its sender's connection if its first frame is a valid hello; once
        both parties are in, start forwarding."""
        conn.settimeout(min(10.0, self.hello_timeout_s))
        try:
            header, _, body = read_frame(conn)
            if header.step != STEP_HELLO or header.seq != 0:
                raise PeerFrameError("the first frame of a connection must be the hello.")
            if open_frame(self.key, header, body) != header.sender.encode():
                raise PeerFrameError("the hello does not name its sender.")
            with self._lock:
                if header.sender in self.parties or self._closed.is_set():
                    raise PeerFrameError(f"the {header.sender} is connected already.")
                conn.settimeout(None)
                self.parties[header.sender] = conn
                paired = len(self.parties) == len(SENDERS)
        except (PeerFrameError, OSError):
            with self._lock:
                self.refused += 1
            _close(conn)
            return
        if paired:
            self._paired.set()
            for role in SENDERS:
                self._spawn(self._pump, f"peer-relay-{role}", role)

    def _hello_deadline(self) -> None:
        if not self._paired.is_set():
            missing = sorted(set(SENDERS) - set(self.parties))
            self.errors.append(f"the {' and the '.join(missing)} did not join the peer stream "
                               f"within {self.hello_timeout_s:g} s.")
            self.close()

    # ------------------------------------------------------------------ forwarding
    def _pump(self, sender: str) -> None:
        """Forward ``sender``'s frames to the other party until either side ends."""
        src = self.parties[sender]
        dst = next(c for role, c in self.parties.items() if role != sender)
        try:
            while True:
                try:
                    header, raw, body = read_frame(src)
                except ConnectionError:
                    return  # the sender is done (or gone): the peer learns it below
                if header.sender != sender or header.step == STEP_HELLO:
                    raise PeerFrameError(f"the {sender} sent a frame in the "
                                         f"{header.sender}'s name or a second hello.")
                dst.sendall(raw + body)
                with self._lock:
                    self.frames_forwarded += 1
                    self.bytes_forwarded += len(raw) + len(body)
                if self.on_frame is not None:
                    self.on_frame(header)
        except (PeerFrameError, OSError) as exc:
            if not self._closed.is_set():
                self.errors.append(f"the {sender}'s stream stopped: {exc}")
        finally:
            for conn, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    conn.shutdown(how)
                except OSError:
                    pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
