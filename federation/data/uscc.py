"""Unified social credit codes (USCC) of Chinese legal entities, GB 32100-2015.

A USCC is the 18-character key that joins the bank's rows with the public credit center's
rows in the vertical setting. Its layout (1-based positions):

====  ========================================================================
1     registration authority code (``9`` = market regulation, ``1`` = staffing office, ...)
2     entity type code within that authority (``1`` = enterprise, ...)
3-8   administrative division code of the registering authority (GB/T 2260, 6 digits)
9-17  entity identifier = organisation code (GB 11714): 8 body characters + 1 check character
18    check character of the whole code
====  ========================================================================

Two checks are implemented and both are on by default:

* **Position 18** (GB 32100-2015): over the 31-character alphabet
  ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, S, V, Z), with weights ``W_i = 3^(i-1) mod 31``
  for ``i = 1..17`` and character values ``0..30``, ``C18 = (31 - sum(W_i * C_i) mod 31) mod 31``.
* **Position 17** (GB 11714-1997, organisation code): character values ``0-9`` for digits and
  ``A=10 .. Z=35`` for letters, weights ``3, 7, 9, 10, 5, 8, 4, 2`` on positions 9-16,
  ``C17 = 11 - (sum mod 11)``, written ``X`` when it is 10 and ``0`` when it is 11.

Both were verified against real, publicly listed codes (see ``tests/federation/test_uscc.py``).
Positions 1 and 2 are not checked against the list of authority and type codes, because that
list is amended by regulation; positions 3-8 are only checked to be digits, not that the
division exists. Codes are matched exactly: normalise with :func:`normalize_uscc` first if the
source may hold lower case letters or spaces.

Security note: a USCC is a public identifier, not a secret. It must still not leave a party in
the clear during entity alignment; ``protocols.psi.ecdh`` blinds it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from federation.errors import InvalidCreditCodeError

USCC_LENGTH = 18
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORGANISATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_CHAR_VALUE = {char: value for value, char in enumerate(USCC_CHARSET)}
_DIVISION_SLICE = slice(2, 8)
_ORGANISATION_SLICE = slice(8, 17)

#: A few real GB/T 2260 division codes used by :func:`generate_uscc`.
SYNTHETIC_DIVISION_CODES = (
    "110000", "110108", "310000", "310115", "440100", "440300",
    "330100", "350100", "320500", "510100", "420100", "500000",
)


def uscc_check_character(first17: str) -> str:
    """Return the GB 32100-2015 check character (position 18) for the first 17 characters.

    Parameters
    ----------
    first17 : str
        The first 17 characters of a code, all from :data:`USCC_CHARSET`.

    Returns
    -------
    str
        One character of :data:`USCC_CHARSET`.

    Raises
    ------
    ValueError
        If ``first17`` is not 17 characters long or holds a character outside the alphabet.
    """
    if len(first17) != USCC_LENGTH - 1:
        raise ValueError(f"need the first 17 characters of a credit code, got {len(first17)}")
    try:
        pairs = zip(first17, USCC_WEIGHTS, strict=True)
        total = sum(_CHAR_VALUE[char] * weight for char, weight in pairs)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the USCC alphabet") from exc
    return USCC_CHARSET[(31 - total % 31) % 31]


def organisation_code_check_character(body: str) -> str:
    """Return the GB 11714-1997 check character of an 8-character organisation code body.

    Parameters
    ----------
    body : str
        Positions 9-16 of a USCC: eight digits or upper-case Latin letters.

    Returns
    -------
    str
        ``"0"``-``"9"`` or ``"X"``.

    Raises
    ------
    ValueError
        If ``body`` is not 8 digits or upper-case ASCII letters.
    """
    if len(body) != len(ORGANISATION_CODE_WEIGHTS) or not all(
        char.isascii() and (char.isdigit() or char.isupper()) for char in body
    ):
        raise ValueError(f"an organisation code body is 8 digits or A-Z letters, got {body!r}")
    pairs = zip(body, ORGANISATION_CODE_WEIGHTS, strict=True)
    total = sum(int(char, 36) * weight for char, weight in pairs)
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def normalize_uscc(code: str) -> str:
    """Strip surrounding white space and upper-case a code; the only edits that are safe."""
    return code.strip().upper()


def uscc_problem(code: object, *, check_organisation_code: bool = True) -> str | None:
    """Return why ``code`` is not a valid USCC, or ``None`` when it is valid.

    Parameters
    ----------
    code : object
        The value read from the input; anything that is not a ``str`` is reported.
    check_organisation_code : bool, default True
        Also check the GB 11714 check character at position 17.

    Returns
    -------
    str or None
        A short reason naming the position at fault, or ``None``.
    """
    if not isinstance(code, str):
        return f"not a string (got {type(code).__name__}); read the id column as text (dtype=str)"
    if len(code) != USCC_LENGTH:
        return f"has {len(code)} characters, a credit code has {USCC_LENGTH}"
    for position, char in enumerate(code, start=1):
        if char not in _CHAR_VALUE:
            hint = "; upper-case it" if char.upper() in _CHAR_VALUE else ""
            return (f"character {char!r} at position {position} is not in the code alphabet "
                    f"{USCC_CHARSET} (I, O, S, V, Z are never used){hint}")
    if not code[_DIVISION_SLICE].isdigit():
        return f"positions 3-8 {code[_DIVISION_SLICE]!r} must be a 6-digit division code"
    if check_organisation_code:
        organisation = code[_ORGANISATION_SLICE]
        expected = organisation_code_check_character(organisation[:-1])
        if organisation[-1] != expected:
            return (f"organisation code check character at position 17 is {organisation[-1]!r}, "
                    f"expected {expected!r} (GB 11714)")
    expected = uscc_check_character(code[:-1])
    if code[-1] != expected:
        return f"check character at position 18 is {code[-1]!r}, expected {expected!r}"
    return None


def validate_uscc(code: object, *, check_organisation_code: bool = True) -> None:
    """Raise :class:`InvalidCreditCodeError` unless ``code`` is a valid USCC.

    Parameters
    ----------
    code : object
        Candidate code; must be an 18-character upper-case ``str``.
    check_organisation_code : bool, default True
        Also check the GB 11714 check character at position 17.

    Raises
    ------
    InvalidCreditCodeError
        With the reason; correct the code at its source (a typo usually breaks a check character).
    """
    problem = uscc_problem(code, check_organisation_code=check_organisation_code)
    if problem is not None:
        raise InvalidCreditCodeError(
            f"invalid unified social credit code {code!r}: {problem}; correct it in the source data"
        )


def is_valid_uscc(code: object, *, check_organisation_code: bool = True) -> bool:
    """Return whether ``code`` is a valid USCC (see :func:`validate_uscc`)."""
    return uscc_problem(code, check_organisation_code=check_organisation_code) is None


def find_invalid_codes(
    codes: Iterable[object],
    *,
    first_row: int = 1,
    check_organisation_code: bool = True,
    report_duplicates: bool = True,
) -> list[tuple[int, str, str]]:
    """List every invalid (and, optionally, repeated) code of a column with its row number.

    Parameters
    ----------
    codes : iterable of object
        The id column in file order.
    first_row : int, default 1
        Number given to the first element; pass 2 to report CSV line numbers under a header.
    check_organisation_code : bool, default True
        Also check the GB 11714 check character at position 17.
    report_duplicates : bool, default True
        Report a valid code that already appeared, naming the row where it first appeared.

    Returns
    -------
    list of (int, str, str)
        ``(row_number, repr-safe code text, reason)``, in row order; empty when all are valid.
    """
    problems: list[tuple[int, str, str]] = []
    first_seen: dict[str, int] = {}
    for row, code in enumerate(codes, start=first_row):
        problem = uscc_problem(code, check_organisation_code=check_organisation_code)
        text = code if isinstance(code, str) else repr(code)
        if problem is not None:
            problems.append((row, text, problem))
        elif report_duplicates and text in first_seen:
            problems.append((row, text, f"duplicate of row {first_seen[text]}"))
        else:
            first_seen.setdefault(text, row)
    return problems


def generate_uscc(
    rng: np.random.Generator,
    *,
    registration_authority: str = "9",
    entity_type: str = "1",
    division_code: str | None = None,
) -> str:
    """Draw a random, valid USCC (both check characters correct).

    Half of the codes have a legacy all-digit organisation code, half a post-2015 ``MA...``
    identifier. Codes are synthetic; one may coincide with a real entity's code by chance.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one for reproducible data).
    registration_authority, entity_type : str
        Positions 1 and 2; the default ``"91"`` is an enterprise registered by market regulation.
    division_code : str, optional
        Positions 3-8; drawn from :data:`SYNTHETIC_DIVISION_CODES` when omitted.

    Returns
    -------
    str
        An 18-character code accepted by :func:`validate_uscc`.
    """
    if division_code is None:
        division_code = SYNTHETIC_DIVISION_CODES[int(rng.integers(len(SYNTHETIC_DIVISION_CODES)))]
    if rng.random() < 0.5:
        body = "".join(str(d) for d in rng.integers(0, 10, size=8))
    else:
        body = "MA" + "".join(USCC_CHARSET[i] for i in rng.integers(0, 31, size=6))
    first17 = (registration_authority + entity_type + division_code
               + body + organisation_code_check_character(body))
    code = first17 + uscc_check_character(first17)
    validate_uscc(code)
    return code


def generate_usccs(n: int, rng: np.random.Generator) -> list[str]:
    """Draw ``n`` distinct valid enterprise USCCs (see :func:`generate_uscc`).

    Raises
    ------
    ValueError
        If ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"number of codes must be >= 0, got {n}")
    seen: set[str] = set()
    codes: list[str] = []
    while len(codes) < n:
        code = generate_uscc(rng)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes
