"""Identifier formats from the trade standards the users already know.

* ISO 6346 freight container numbers, with the check digit verified;
* UN/LOCODE places (UNECE Recommendation 16): ISO 3166 alpha-2 country + 3
  characters from ``A-Z`` and ``2-9``;
* Harmonized System commodity codes: 6 digits (WCO HS) up to 10 (national
  subdivisions), chapter 01..97;
* ISO 4217 alphabetic currency codes (the active list).
"""

from __future__ import annotations

import re

UNLOCODE_PATTERN = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
HS_CODE_PATTERN = re.compile(r"^[0-9]{6,10}$")
HS_PREFIX_PATTERN = re.compile(r"^[0-9]{2,10}$")
CONTAINER_PATTERN = re.compile(r"^[A-Z]{3}[UJZ][0-9]{7}$")
RECORD_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
UNIT_PATTERN = re.compile(r"^[A-Z0-9]{2,3}$")  # UN/ECE Recommendation 20 unit codes

_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA
    XXX YER ZAR ZMW ZWG ZWL
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())


def _letter_values() -> dict[str, int]:
    """ISO 6346 letter values: A=10, counting up and skipping multiples of 11 (11, 22, 33)."""
    values: dict[str, int] = {}
    value = 10
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if value % 11 == 0:
            value += 1
        values[letter] = value
        value += 1
    return values


_LETTER_VALUES = _letter_values()


def iso6346_remainder(first_ten: str) -> int:
    """Sum of the character values weighted by 2**position, modulo 11.

    Digits count as themselves, letters from the table. ISO 6346 writes a
    remainder of 10 as check digit 0 and advises owners not to use serial
    numbers that give it, since they collide with remainder 0.
    """
    if len(first_ten) != 10 or not CONTAINER_PATTERN.match(first_ten + "0"):
        raise ValueError(f"{first_ten!r} is not an owner code, category letter and 6 digits")
    total = 0
    for position, char in enumerate(first_ten):
        value = int(char) if char.isdigit() else _LETTER_VALUES[char]
        total += value << position
    return total % 11


def iso6346_check_digit(first_ten: str) -> int:
    """Check digit of owner code + category + 6-digit serial (the first 10 characters)."""
    return iso6346_remainder(first_ten) % 10


def is_container_number(text: str) -> bool:
    """True for an 11-character ISO 6346 number whose check digit is right."""
    if not isinstance(text, str) or not CONTAINER_PATTERN.match(text):
        return False
    return iso6346_check_digit(text[:10]) == int(text[10])


def with_check_digit(first_ten: str) -> str:
    """``first_ten`` followed by its ISO 6346 check digit."""
    return first_ten + str(iso6346_check_digit(first_ten))


def is_unlocode(text: str) -> bool:
    return isinstance(text, str) and bool(UNLOCODE_PATTERN.match(text))


def is_hs_code(text: str) -> bool:
    return isinstance(text, str) and bool(HS_CODE_PATTERN.match(text)) and 1 <= int(text[:2]) <= 97


def is_currency(text: str) -> bool:
    return text in ISO_4217


def is_record_id(text: str) -> bool:
    return isinstance(text, str) and bool(RECORD_ID_PATTERN.match(text))


def is_restricted(hs_code: str, restricted_prefixes: list[str]) -> bool:
    """True when goods declared under ``hs_code`` may fall under a restricted heading.

    Matched in both directions: the code lies under a restricted prefix
    (``930200`` under ``9302``), or the code is itself a prefix of a restricted
    code (``930200`` may be the restricted subdivision ``93020010``: a shorter,
    less precise code must not slip past a longer restriction).
    """
    return any(hs_code.startswith(p) or p.startswith(hs_code) for p in restricted_prefixes)


def is_covered(hs_code: str, scope: list[str]) -> bool:
    """True when a licence whose ``hs_codes`` are ``scope`` covers goods of ``hs_code``.

    One direction only: the goods code must lie under one of the licence's prefixes
    (a licence for ``93020010`` does not cover goods declared as the wider ``930200``).
    An empty scope covers everything.
    """
    return not scope or any(hs_code.startswith(p) for p in scope)
