"""Shared pieces of the fuzz suite: small test keys and strategies for malformed input.

Every fuzz test states one property: a decoder fed bytes, JSON or records that another party
(or a file on disk) could hold either returns a valid object or raises a named
:class:`~protocols.errors.FedCreditError`. Any other exception (``IndexError``, ``KeyError``,
``struct.error``, ``UnicodeDecodeError``, ``RecursionError``, a bare ``ValueError``...) fails the
test. Strategies are handed out by the session fixture ``fuzz`` and drawn with ``st.data()``
(test modules cannot import each other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from flwr.app import ConfigRecord, MetricRecord
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.paillier.keys import generate_paillier_keypair

SMALL_KEY_BITS = 512
HEAD_BYTES = 96
"""Byte mutations hit the first HEAD_BYTES (headers, length prefixes) half of the time."""

#: Inputs that broke parsers elsewhere: empty, deep nesting (RecursionError), huge integers
#: (int-from-str digit limit), non-UTF-8, lone surrogates, NaN, wrong JSON top-level types.
PATHOLOGICAL: tuple[bytes, ...] = (
    b"", b"\x00", b"\xff" * 64, b"[" * 100_000, b'{"a":' * 100_000, b"1" * 5000,
    b"-" + b"9" * 5000, b"\xc3\x28", b"\xed\xa0\x80", b'"\\ud800"', b'{"\\ud800": 1}',
    b"NaN", b"Infinity", b"null", b"true", b"[]", b"{}", b'""', b"0", b"1e400",
    b'{"kind": null}', b"\xef\xbb\xbf{}",
)


def _json_scalars() -> SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
        st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64, -2**63 - 1, 10**40, 10**400]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12), st.sampled_from(["", "\ud800", "0x10", "ff", "1.5", " 7 ", "nan"]),
    )


JSON_VALUES: SearchStrategy[Any] = st.recursive(
    _json_scalars(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=10,
)


#: Every value type a Flower ConfigRecord may hold (lists are homogeneous).
RECORD_VALUES: SearchStrategy[Any] = st.one_of(
    st.integers(), st.sampled_from([0, -1, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.binary(max_size=16), st.booleans(),
    st.lists(st.integers(), max_size=3), st.lists(st.floats(), max_size=3),
    st.lists(st.text(max_size=4), max_size=3), st.lists(st.binary(max_size=4), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
#: Every value type a Flower MetricRecord may hold.
METRIC_VALUES: SearchStrategy[Any] = st.one_of(
    st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3), st.lists(st.floats(), max_size=3),
)


def _fits(value: Any, record_type: type) -> bool:
    try:
        record_type({"k": value})
    except (TypeError, ValueError):
        return False
    return True


@st.composite
def _mutated_record(draw: st.DrawFn, valid: dict[str, Any], values: SearchStrategy[Any],
                    record_type: type) -> dict[str, Any]:
    record = dict(valid)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("tweak", "replace", "delete", "add")))
        if op == "add" or not record:
            record[draw(st.text(max_size=8))] = draw(values)
            continue
        key = draw(st.sampled_from(sorted(record)))
        if op == "delete":
            del record[key]
        elif op == "replace":
            record[key] = draw(values)
        else:
            tweaked = draw(_tweaks(record[key]))
            record[key] = tweaked if _fits(tweaked, record_type) else draw(values)
    return record


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every (container path, key) inside a JSON document, depth first."""
    out: list[tuple] = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        return out
    for key, value in items:
        out.append((prefix, key))
        out.extend(_paths(value, prefix + (key,)))
    return out


def _resolve(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _tweaks(value: Any) -> SearchStrategy[Any]:
    """Values of (mostly) the same type, to get past type checks and into value checks."""
    if isinstance(value, bool):
        return st.sampled_from([not value, 0, 1, "true"])
    if isinstance(value, int):
        return st.one_of(st.sampled_from([0, -1, value + 1, value - 1, -value, 2**63, 2**64,
                                          10**30, 10**400, str(value),
                                          float(value) if abs(value) < 2**1000 else 0.5]),
                         st.integers())
    if isinstance(value, float):
        return st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -value, 1e308,
                                -1e308, 10**400, -10**400, 5e-324,
                                int(value) if value == value and abs(value) < 1e18 else 0])
    if isinstance(value, str):
        return st.one_of(
            st.sampled_from(["", value.upper(), value + value, "\ud800", value[::-1]]),
            st.integers(0, max(0, len(value))).map(lambda k: value[:k]),
            st.text(max_size=8).map(lambda extra: value + extra),
            st.tuples(st.integers(0, max(0, len(value) - 1)), st.characters()).map(
                lambda ic: value[:ic[0]] + ic[1] + value[ic[0] + 1:]),
        )
    if isinstance(value, bytes):
        return st.one_of(st.sampled_from([b"", value + value, value[::-1], b"\x00" * 8]),
                         st.integers(0, len(value)).map(lambda k: value[:k]),
                         st.binary(max_size=8).map(lambda extra: value + extra))
    if isinstance(value, list):
        options: list[Any] = [[], list(reversed(value))]
        if value:
            options += [value[:-1], value[1:], value + value[:1], [value[0]] * 3]
        return st.sampled_from(options)
    return JSON_VALUES


@st.composite
def _mutated_doc(draw: st.DrawFn, doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths or draw(st.integers(0, 19)) == 0:
            return draw(JSON_VALUES)
        prefix, key = draw(st.sampled_from(paths))
        try:
            parent = _resolve(doc, prefix)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier step removed or replaced this branch
        op = draw(st.sampled_from(("tweak", "tweak", "replace", "delete", "add")))
        if op == "delete":
            del parent[key]
        elif op == "add":
            if isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(JSON_VALUES)
            else:
                parent.append(draw(JSON_VALUES))
        elif op == "replace":
            parent[key] = draw(JSON_VALUES)
        else:
            parent[key] = draw(_tweaks(parent[key]))
    return doc


@st.composite
def _mutated_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    data = bytearray(valid)

    def position(allow_end: bool = False) -> int:
        top = len(data) if allow_end else len(data) - 1
        return draw(st.one_of(st.integers(0, min(top, HEAD_BYTES)), st.integers(0, top)))

    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "extend", "insert", "delete")))
        if op in ("flip", "set") and not data:
            op = "extend"
        if op == "flip":
            at = position()
            data[at] ^= draw(st.integers(1, 255))
        elif op == "set":
            at = position()
            chunk = draw(st.one_of(st.sampled_from([b"\x00" * 8, b"\xff" * 8, b"\x7f\xff"]),
                                   st.binary(min_size=1, max_size=8)))
            data[at:at + len(chunk)] = chunk
        elif op == "truncate":
            del data[position(allow_end=True):]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=32))
        elif op == "insert":
            at = position(allow_end=True)
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            at = position(allow_end=True)
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


class Fuzz:
    """Strategies for malformed input, built around a valid example of the format."""

    json_values = JSON_VALUES
    pathological = st.sampled_from(PATHOLOGICAL)

    def bytes_like(self, valid: bytes, *, max_size: int = 256) -> SearchStrategy[bytes]:
        """Random bytes, byte-level mutants of ``valid`` (flip, set, cut, extend), oddities."""
        return st.one_of(st.binary(max_size=max_size), _mutated_bytes(valid), _mutated_bytes(valid),
                         self.pathological, st.just(valid))

    def json_docs(self, doc: Any) -> SearchStrategy[Any]:
        """Structure-aware mutants of a JSON document (fields tweaked, retyped, added, cut)."""
        return _mutated_doc(doc)

    def json_like(self, doc: Any, *, dumps: Callable[[Any], str] = json.dumps,
                  ) -> SearchStrategy[bytes]:
        """Bytes of mutated documents, byte mutants of the valid encoding, random bytes."""
        valid = dumps(doc).encode("utf-8")
        return st.one_of(
            _mutated_doc(doc).map(lambda d: json.dumps(d).encode("utf-8")),
            _mutated_doc(doc).map(lambda d: json.dumps(d).encode("utf-8")),
            _mutated_bytes(valid), self.pathological, st.binary(max_size=64), st.just(valid),
        )

    def record_like(self, valid: dict[str, Any], *, metric: bool = False,
                    ) -> SearchStrategy[dict[str, Any]]:
        """Contents for a ConfigRecord (or MetricRecord): fields cut, retyped, added."""
        values = METRIC_VALUES if metric else RECORD_VALUES
        record_type = MetricRecord if metric else ConfigRecord
        return st.one_of(_mutated_record(valid, values, record_type),
                         st.dictionaries(st.text(max_size=8), values, max_size=4),
                         st.just(valid))

    def json_text(self, doc: Any) -> SearchStrategy[str]:
        """As :meth:`json_like`, decoded to ``str`` (invalid UTF-8 replaced) for text APIs."""
        return self.json_like(doc).map(lambda b: b.decode("utf-8", errors="surrogateescape"))


@pytest.fixture(scope="session")
def fuzz() -> Fuzz:
    """Strategies for malformed inputs (see :class:`Fuzz`)."""
    return Fuzz()


@pytest.fixture(scope="session")
def paillier_pair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A 512-bit Paillier key pair (insecure, tests only)."""
    return generate_paillier_keypair(SMALL_KEY_BITS, allow_insecure_test_key=True)


@pytest.fixture(scope="session")
def identity_key() -> X25519PrivateKey:
    """A bank's X25519 identity key."""
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    """A bank's Ed25519 signing key."""
    return Ed25519PrivateKey.generate()
