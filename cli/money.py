"""Amounts as people read them: major units, thousands separators, the currency code.

Contracts store money as integers in the currency's minor unit (cents). The
number of minor-unit digits is ISO 4217's (the "E" column of its list one):
2 for most currencies, 0 for JPY or KRW, 3 for KWD or BHD, 4 for CLF. A code
ISO 4217 gives no minor unit (gold, SDR, test codes) or that is not in the list
is shown as it is stored, with "minor units" said plainly.
"""

from __future__ import annotations

from contracts.codes import ISO_4217

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_NONE = "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX"  # no minor unit defined

MINOR_DIGITS: dict[str, int] = {
    **{c: 2 for c in ISO_4217 - set(_NONE.split())},
    **{c: 0 for c in _ZERO.split()},
    **{c: 3 for c in _THREE.split()},
    **{c: 4 for c in _FOUR.split()},
}


def money(minor: int, currency: str) -> str:
    """``1023750, "EUR"`` as ``10,237.50 EUR``; ``500, "JPY"`` as ``500 JPY``."""
    digits = MINOR_DIGITS.get(currency)
    if digits is None:
        return f"{minor:,} {currency} (minor units)"
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**digits)
    text = f"{whole:,}" + (f".{part:0{digits}d}" if digits else "")
    return f"{sign}{text} {currency}"
