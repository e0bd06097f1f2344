"""A cursor over untrusted bytes for the wire decoders (one class for every message format).

Every short read, bad text or trailing byte raises :class:`MalformedMessageError` naming the
message kind, so a decoder never leaks an IndexError, struct.error or UnicodeDecodeError.
"""

from __future__ import annotations

from protocols.errors import MalformedMessageError


class ByteReader:
    """Consume ``data`` from the front; ``what`` names the message in errors."""

    def __init__(self, data: bytes, what: str = "message") -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0
        self.what = what

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        if size < 0 or self._pos + size > len(self._data):
            raise MalformedMessageError(
                f"{self.what} truncated at byte {self._pos} (needed {size} more bytes, "
                f"{len(self._data) - self._pos} left); the sender must re-send it")
        chunk = bytes(self._data[self._pos:self._pos + size])
        self._pos += size
        return chunk

    def uint(self, size: int) -> int:
        """A big-endian unsigned integer of ``size`` bytes."""
        return int.from_bytes(self.take(size), "big")

    def text(self, len_size: int, encoding: str) -> str:
        """Text prefixed by its length (``len_size`` bytes)."""
        try:
            return self.take(self.uint(len_size)).decode(encoding)
        except UnicodeDecodeError as exc:
            raise MalformedMessageError(f"{self.what} holds invalid {encoding} text") from exc

    def left(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._pos

    def finish(self) -> None:
        """Refuse trailing bytes."""
        if self.left():
            raise MalformedMessageError(f"{self.what} has {self.left()} unexpected trailing "
                                        "bytes; discard it and ask the sender to re-send")
