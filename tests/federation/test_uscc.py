"""Tests of federation.data.uscc: GB 32100-2015 / GB 11714 check characters on real public codes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.uscc import (
    USCC_CHARSET,
    find_invalid_codes,
    generate_uscc,
    generate_usccs,
    is_valid_uscc,
    normalize_uscc,
    organisation_code_check_character,
    uscc_check_character,
    validate_uscc,
)
from federation.errors import DataError, InvalidCreditCodeError

# Codes published on the national enterprise credit information publicity system and in
# annual reports. Each passes two independent checks (positions 17 and 18).
REAL_CODES = (
    "91350100M000100Y43",
    "9144030071526726XG",  # Tencent Technology (Shenzhen)
    "914403001922038216",  # Huawei Technologies
    "91520000214434146R",  # Kweichow Moutai
    "91440300192185379H",  # Ping An Bank
    "91440300192317458F",  # BYD
    "91100000100003962T",  # Industrial and Commercial Bank of China
    "91330100799655058B",  # Alibaba (China)
    "91110108551385082Q",  # Xiaomi Technology
    "12100000400000624D",  # Tsinghua University (public institution, authority 1)
    "12100000400002259P",  # Peking University
    "11100000000013127D",
)


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code: str) -> None:
    assert uscc_check_character(code[:17]) == code[17]
    assert organisation_code_check_character(code[8:16]) == code[16]
    validate_uscc(code)
    assert is_valid_uscc(code)


def test_organisation_code_known_answers() -> None:
    # GB 11714 examples: check character 10 is written X, 11 is written 0.
    assert organisation_code_check_character("71526726") == "X"
    assert organisation_code_check_character("M000100Y") == "4"


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_single_character_substitution_is_detected(code: str) -> None:
    for position in range(18):
        for char in USCC_CHARSET:
            if char != code[position]:
                mutated = code[:position] + char + code[position + 1:]
                assert not is_valid_uscc(mutated), mutated


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("91350100M000100Y4", "17 characters"),
        ("91350100M000100Y433", "19 characters"),
        ("91350100M000100I43", "'I' at position 16"),
        ("91350100m000100Y43", "upper-case it"),
        ("9135010AM000100Y43", "division code"),
        ("91350100M000100Y53", "position 17"),
        ("91350100M000100Y44", "position 18"),
        (914403001922038216, "dtype=str"),
        (None, "not a string"),
    ],
)
def test_invalid_codes_raise_named_error(code: object, fragment: str) -> None:
    with pytest.raises(InvalidCreditCodeError, match="correct it") as info:
        validate_uscc(code)
    assert fragment in str(info.value)
    assert isinstance(info.value, DataError)
    assert not is_valid_uscc(code)


def test_organisation_check_can_be_switched_off() -> None:
    bad_position_17 = "91350100M000100Y5"
    code = bad_position_17 + uscc_check_character(bad_position_17)
    assert not is_valid_uscc(code)
    assert is_valid_uscc(code, check_organisation_code=False)


def test_normalize() -> None:
    assert normalize_uscc("  91350100m000100y43\n") == "91350100M000100Y43"


def test_find_invalid_codes_reports_rows_and_reasons() -> None:
    codes = [REAL_CODES[0], "91350100M000100Y44", float("nan"), REAL_CODES[1], REAL_CODES[0]]
    found = find_invalid_codes(codes, first_row=2)
    assert [(row, code) for row, code, _ in found] == [
        (3, "91350100M000100Y44"), (4, "nan"), (6, REAL_CODES[0])]
    assert "position 18" in found[0][2]
    assert found[2][2] == "duplicate of row 2"
    assert find_invalid_codes(REAL_CODES) == []
    assert len(find_invalid_codes(codes, report_duplicates=False)) == 2


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_generated_codes_are_valid(seed: int) -> None:
    code = generate_uscc(np.random.default_rng(seed))
    assert is_valid_uscc(code)
    assert code[:2] == "91"


def test_generate_usccs_unique_and_deterministic() -> None:
    codes = generate_usccs(2000, np.random.default_rng(7))
    assert len(set(codes)) == 2000
    assert codes == generate_usccs(2000, np.random.default_rng(7))
    assert find_invalid_codes(codes) == []
    with pytest.raises(ValueError, match=">= 0"):
        generate_usccs(-1, np.random.default_rng(0))
