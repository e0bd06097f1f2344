"""Validation of request fields: JSON bodies, USCCs, purpose codes, batch sizes.

Every failure is a :class:`Refusal` naming the field and the rule, never echoing the value.
"""

from __future__ import annotations

import json
from typing import Any

from fedcredit.service.errors import Refusal
from federation.data.uscc import (
    USCC_CHARSET,
    USCC_LENGTH,
    organisation_code_check_character,
    uscc_check_character,
)

PURPOSES = ("loan-approval", "credit-line-review", "post-loan-monitoring", "guarantee-review",
            "enterprise-self-query")
"""Purpose codes a query may give (the log records which)."""


def uscc_rule_broken(code: object) -> str | None:
    """Which GB 32100-2015 rule ``code`` breaks (without its characters), or None if valid."""
    if not isinstance(code, str):
        return "must be a string"
    if len(code) != USCC_LENGTH:
        return f"must have {USCC_LENGTH} characters"
    if any(ch not in USCC_CHARSET for ch in code):
        return f"must use only the code alphabet {USCC_CHARSET} (upper case)"
    if not code[2:8].isdigit():
        return "positions 3-8 must be a 6-digit division code"
    if code[16] != organisation_code_check_character(code[8:16]):
        return "fails the organisation-code check character at position 17 (GB 11714)"
    if code[17] != uscc_check_character(code[:17]):
        return "fails the check character at position 18 (GB 32100-2015)"
    return None


def check_uscc(code: object, field: str) -> str:
    """``code`` if it is a valid USCC; else 422 naming ``field`` and the broken rule."""
    rule = uscc_rule_broken(code)
    if rule is not None:
        raise Refusal(422, "invalid_uscc", f"field '{field}' is not a valid unified social "
                      f"credit code: it {rule}; correct it at its source.", field=field)
    assert isinstance(code, str)
    return code


def check_purpose(purpose: object, field: str = "purpose") -> str:
    """A known purpose code; else 422 naming the field and the codes."""
    if purpose not in PURPOSES:
        raise Refusal(422, "invalid_purpose", f"field '{field}' must be one of "
                      f"{', '.join(PURPOSES)}.", field=field)
    assert isinstance(purpose, str)
    return purpose


def parse_body(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """The JSON object of a request body (413 when over ``max_bytes``, 422 when not JSON)."""
    if len(body) > max_bytes:
        raise Refusal(413, "too_large", f"request body over {max_bytes} bytes; split it.")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise Refusal(422, "invalid_json", "the body must be a JSON object.", field="body") from None
    if not isinstance(doc, dict):
        raise Refusal(422, "invalid_json", "the body must be a JSON object.", field="body")
    return doc


def check_rows(rows: object, *, field: str, limit: int) -> list[Any]:
    """A non-empty JSON list of at most ``limit`` items (413 over it, 422 otherwise)."""
    if not isinstance(rows, list) or not rows:
        raise Refusal(422, "invalid_rows", f"field '{field}' must be a non-empty list.",
                      field=field)
    if len(rows) > limit:
        raise Refusal(413, "batch_too_large", f"field '{field}' holds more than {limit} rows; "
                      f"send at most {limit} per request.", field=field)
    return rows
