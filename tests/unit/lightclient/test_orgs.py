"""The one name-matching rule: a case-insensitive substring of the organisation's name."""

from __future__ import annotations

import pytest

from contracts.identity_records import Organisation
from lightclient.orgs import name_key, name_matches


def org(name: str) -> Organisation:
    return Organisation("x", name, "trader", "Busan", False, (), 1)


@pytest.mark.parametrize(
    ("name", "text", "matches"),
    [
        ("Hanjin Shipping Co., Ltd.", "hanjin", True),
        ("Hanjin Shipping Co., Ltd.", "HANJIN SHIPPING", True),
        ("Hanjin Shipping Co., Ltd.", "  hanjin \t shipping ", True),
        ("HANJIN  Logistics", "hanjin logistics", True),
        ("Hanjin Shipping Co., Ltd.", "shipping co", True),
        ("Hanjin Shipping Co., Ltd.", "shipping co.,", True),
        ("Hanjin Shipping Co., Ltd.", "hanjinshipping", False),
        ("Hanjin Shipping Co., Ltd.", "hanjin-shipping", False),  # an id, not the name
        ("Große Hafen GmbH", "GROSSE HAFEN", True),  # case-folded, not only lowered
        ("ＡＣＭＥ Trading", "acme", True),  # full-width letters: NFKC
        ("한진해운", "한진", True),
        ("Acme", "", False),
        ("Acme", "   ", False),
    ],
)
def test_name_matches(name: str, text: str, matches: bool) -> None:
    assert name_matches(org(name), text) is matches


def test_name_key() -> None:
    assert name_key("  Busan\u00a0Port  Authority ") == "busan port authority"
