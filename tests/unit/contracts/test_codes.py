"""Identifier formats: ISO 6346, UN/LOCODE, HS codes, ISO 4217."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import codes

# Published valid container numbers:
# - CSQU3054383: the worked example of the Wikipedia article "ISO 6346" (check digit 3);
# - BICU1234565: the Bureau International des Containers' own (theoretical) example,
#   "BICU 123456 5";
# - HLXU6539440: a Hapag-Lloyd container number marked "HLXU 653944 0".
VALID = ["CSQU3054383", "BICU1234565", "HLXU6539440"]


@pytest.mark.parametrize("number", VALID)
def test_published_container_numbers_are_valid(number: str) -> None:
    assert codes.is_container_number(number)
    assert codes.with_check_digit(number[:10]) == number


def test_mscu1234565_is_not_valid_its_check_digit_is_6() -> None:
    # Often quoted as an example, but the ISO 6346 digit of MSCU123456 is 6, not 5.
    assert codes.iso6346_check_digit("MSCU123456") == 6
    assert not codes.is_container_number("MSCU1234565")
    assert codes.is_container_number("MSCU1234566")


def test_letter_values_skip_multiples_of_eleven() -> None:
    values = codes._LETTER_VALUES
    assert values["A"] == 10 and values["B"] == 12 and values["K"] == 21 and values["L"] == 23
    assert values["U"] == 32 and values["V"] == 34 and values["Z"] == 38
    assert not any(v % 11 == 0 for v in values.values())


@pytest.mark.parametrize(
    "bad",
    ["CSQU3054384", "CSQU305438", "csqu3054383", "CSQX3054383", "CSQU30543833", "1SQU3054383"],
)
def test_malformed_or_wrong_digit_is_refused(bad: str) -> None:
    assert not codes.is_container_number(bad)


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3), st.integers(0, 999999)
)
def test_single_digit_errors_are_detected(owner: str, serial: int) -> None:
    """Weights 2**i are never 0 mod 11, so one changed digit always changes the remainder;
    only remainder 10 (written 0, which ISO 6346 advises owners to avoid) can collide."""
    number = codes.with_check_digit(f"{owner}U{serial:06d}")
    assert codes.is_container_number(number)
    for pos in range(4, 10):
        changed = number[:pos] + str((int(number[pos]) + 1) % 10) + number[pos + 1 :]
        assert codes.iso6346_remainder(changed[:10]) != codes.iso6346_remainder(number[:10])
        if 10 not in (codes.iso6346_remainder(number[:10]), codes.iso6346_remainder(changed[:10])):
            assert not codes.is_container_number(changed)


def test_unlocode() -> None:
    for ok in ["KRPUS", "CNSHA", "NLRTM", "USLAX", "KRSJG", "DEHAM", "JPTYO"]:
        assert codes.is_unlocode(ok)
    for bad in ["KRPU", "krpus", "KRPUS1", "K1PUS", "KRPU1", "KRPU0"]:
        assert not codes.is_unlocode(bad)


def test_hs_codes() -> None:
    assert codes.is_hs_code("850760") and codes.is_hs_code("8507600010")
    for bad in ["85076", "85076000101", "000000", "980000", "85076a"]:
        assert not codes.is_hs_code(bad)
    assert codes.is_restricted("930200", ["9302"]) and not codes.is_restricted("930400", ["9302"])


def test_currencies() -> None:
    assert codes.is_currency("KRW") and codes.is_currency("USD") and codes.is_currency("EUR")
    assert not codes.is_currency("XYZ") and not codes.is_currency("usd")
