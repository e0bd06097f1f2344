"""A small keep-alive HTTP/1.1 client: the bank's connections to the center.

Step: the bank POSTs each partial-score request on one of a few persistent connections to the
center (plain TCP on loopback, TLS verified against the federation CA otherwise) and reads the
answer by its ``Content-Length`` (or chunked). It does exactly that and nothing else: no
redirects, cookies, proxies or compression, which is what made a general client (httpx) cost
about a third of the bank's CPU per query.

Failures are :class:`HttpUnavailable` with a short reason (refused, reset, timed out, TLS,
malformed answer); a request on a reused connection that the server had closed meanwhile
(its keep-alive timeout) is sent once more on a fresh connection, so an idle pool does not
turn into a 503. Security assumption: with an ``https`` URL the server's certificate and host
name are verified (``ssl.create_default_context``); the bearer key is sent only over that
connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024


class HttpUnavailable(Exception):  # noqa: N818 (the reason is the message: "timed out", ...)
    """The server could not be reached or gave no well-formed answer."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    """Status, headers (lower-case names) and body of one answer."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False

    def close(self) -> None:
        self.writer.close()


def tls_context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    """The verifying TLS context of an ``https`` URL (``ca_file``: trust only that CA)."""
    if urlsplit(url).scheme != "https":
        return None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


class HttpPool:
    """Up to ``max_connections`` keep-alive connections to one ``http(s)://host:port``."""

    def __init__(self, url: str, *, headers: Mapping[str, str], ca_file: Path | None = None,
                 max_connections: int = 16) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL with a host: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = tls_context(url, ca_file)
        host_header = parts.netloc.rpartition("@")[2]
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             {"Host": host_header, **headers}.items()).encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def post(self, path: str, body: bytes, *, timeout_s: float,
                   content_type: str = "application/json") -> HttpReply:
        """POST ``body``; the answer, or :class:`HttpUnavailable` (also after ``timeout_s``)."""
        request = (f"POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: "
                   f"{len(body)}\r\n").encode("latin-1") + self._head + b"\r\n" + body
        try:
            async with asyncio.timeout(timeout_s), self._slots:
                return await self._exchange(request)
        except TimeoutError:
            raise HttpUnavailable("timed out") from None

    async def _exchange(self, request: bytes) -> HttpReply:
        for attempt in (0, 1):
            conn = await self._connection(fresh=attempt > 0)
            try:
                conn.writer.write(request)
                reply, keep = await _read_reply(conn.reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.close()
                if conn.used and attempt == 0:  # the server closed an idle connection: once more
                    continue
                raise HttpUnavailable(type(exc).__name__) from None
            except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
                conn.close()
                raise HttpUnavailable(type(exc).__name__) from None
            except BaseException:  # cancelled or timed out mid-answer: the stream is unusable
                conn.close()
                raise
            conn.used = True
            if keep and not self._closed:
                self._idle.append(conn)
            else:
                conn.close()
            return reply
        raise AssertionError("unreachable")

    async def _connection(self, *, fresh: bool) -> _Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.reader.at_eof():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self._tls, limit=MAX_HEAD_BYTES,
                server_hostname=self.host if self._tls is not None else None)
        except ssl.SSLError as exc:
            raise HttpUnavailable(f"TLS: {exc.reason or type(exc).__name__}") from None
        except OSError as exc:
            raise HttpUnavailable(type(exc).__name__) from None
        return _Connection(reader, writer)

    async def close(self) -> None:
        """Close every idle connection (those in use close when their answer is read)."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[HttpReply, bool]:
    """One answer from ``reader`` and whether the connection may be reused."""
    status_line = await reader.readuntil(b"\r\n")
    version, _, rest = status_line.decode("latin-1").partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError("not an HTTP/1.x answer")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError("answer too large")
        body = await reader.readexactly(length)
    keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    return HttpReply(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        total += size
        if size < 0 or total > MAX_BODY_BYTES:
            raise ValueError("answer too large")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
