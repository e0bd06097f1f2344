"""Typed JSON documents: frozen dataclasses checked field by field, and written back as JSON.

The codec behind :mod:`federation.run.results` (and any run-folder file shaped like it). A
document class is a dataclass whose field names are its JSON keys and whose type hints say
what each value may be: ``bool``, ``int``, ``float``, ``str``, ``X | None``, a union of
scalars, ``tuple[X, ...]`` or ``tuple[X, Y]`` (JSON lists), ``dict[str, X]``, ``Literal[...]``,
``Any``, or another document class (a JSON object).

Reading (:func:`parse_document`) refuses a missing required field, a field the class does not
have and a value of another type with one :class:`FieldError` naming the field's path
(``local_only.per_bank[2].auc``); ``bool`` never passes for a number, integers pass for
``float``, and NaN or an infinity passes for none (they are written as ``null``). Writing
(:func:`to_plain`) leaves out an optional field (default ``None``) that is ``None``, unless
its metadata ``{WRITTEN_WITH: "other"}`` names a field that is set, and turns NaN and
infinities into ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

WRITTEN_WITH = "written_with"
"""Field metadata key: the optional field is written (``null`` when unset) whenever the
field it names is set."""


class FieldError(Exception):
    """A value that does not fit its document class; ``where`` is its path, ``problem`` why."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where or '(document)'} {problem}")
        self.where, self.problem = where, problem


def parse_document(cls: type, doc: Any, where: str = "") -> Any:
    """``doc`` (decoded JSON) as an instance of the document class ``cls``.

    Parameters
    ----------
    cls
        A dataclass whose field names are the JSON keys.
    doc
        The decoded JSON object.
    where
        Path of ``doc`` inside the whole document (for error messages).

    Returns
    -------
    object
        ``cls(**fields)``; JSON lists become tuples and integers in ``float`` fields floats.

    Raises
    ------
    FieldError
        A field is missing, unknown or of the wrong type, or ``cls`` refused the values
        (a ``ValueError`` from its ``__post_init__``).
    """
    if not isinstance(doc, dict):
        raise FieldError(where, f"must be an object, got {json_kind(doc)}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise FieldError(_join(where, unknown[0]), "is not a known field")
    values = {}
    for name, spec in known.items():
        if name in doc:
            values[name] = _value(doc[name], _hints(cls)[name], _join(where, name))
        elif spec.default is MISSING:
            raise FieldError(_join(where, name), "is missing")
    try:
        return cls(**values)
    except ValueError as exc:
        raise FieldError(where, str(exc)) from exc


def to_plain(value: Any) -> Any:
    """``value`` as JSON data: documents as objects (unset optional fields left out), tuples
    as lists, numpy scalars as Python numbers, NaN and infinities as ``None``."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for spec in fields(value):
            item = getattr(value, spec.name)
            written_with = spec.metadata.get(WRITTEN_WITH)
            if item is None and spec.default is None and not (
                    written_with and getattr(value, written_with) is not None):
                continue
            out[spec.name] = to_plain(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_kind(value: Any) -> str:
    """The JSON type of a decoded value, in words."""
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def shown(value: Any) -> str:
    """A short rendering of a decoded scalar for a message (its JSON type for anything else)."""
    if value is None or isinstance(value, (bool, float, str)) or (
            isinstance(value, int) and abs(value) < 10**30):
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return json_kind(value)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _value(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked (and, for numbers and sequences, converted) against ``hint``."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, UnionType):
        return _union(value, hint, where)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise FieldError(where, f"must be one of {', '.join(json.dumps(a) for a in args)}, "
                         f"got {shown(value)}")
    if isinstance(hint, type) and is_dataclass(hint):
        return parse_document(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise FieldError(where, f"must be a list, got {json_kind(value)}")
        hints = args[:1] * len(value) if args[-1] is Ellipsis else args
        if len(hints) != len(value):
            raise FieldError(where, f"must hold {len(hints)} values, holds {len(value)}")
        return tuple(_value(v, h, f"{where}[{i}]") for i, (v, h) in enumerate(zip(value, hints, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise FieldError(where, f"must be an object, got {json_kind(value)}")
        return {k: _value(v, args[1], f"{where}[{json.dumps(k)}]") for k, v in value.items()}
    return _scalar(value, hint, where)


def _union(value: Any, hint: Any, where: str) -> Any:
    args = get_args(hint)
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:  # an optional value: errors inside a section name their field
        try:
            return _value(value, options[0], where)
        except FieldError as exc:
            if exc.where != where or not exc.problem.startswith("must be "):
                raise
            raise FieldError(where, f"must be {_describe(hint)}, got {json_kind(value)}") from None
    for option in options:
        try:
            return _value(value, option, where)
        except FieldError:
            continue
    raise FieldError(where, f"must be {_describe(hint)}, got {json_kind(value)}")


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint in (bool, int, str) and type(value) is hint:
        return value
    if hint is float and type(value) in (int, float):
        try:
            number = float(value)
        except OverflowError:
            raise FieldError(where, "is a number out of range") from None
        if not math.isfinite(number):  # written as null, so never in a file we wrote
            raise FieldError(where, "is not a finite number")
        return number
    raise FieldError(where, f"must be {_describe(hint)}, got {json_kind(value)}")


def _describe(hint: Any) -> str:
    """What a value of ``hint`` looks like in JSON, in words."""
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    if is_dataclass(hint) or get_origin(hint) is dict:
        return "an object"
    if get_origin(hint) is tuple:
        return "a list"
    words = {bool: "true/false", int: "an integer", float: "a number", str: "text",
             type(None): "null"}
    return words.get(hint, str(hint))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
