"""The page codec of store format 2 (ledger/state_pages.py): every page a tree writes
decodes to the hash it is filed under and encodes back to the same row, and a damaged
row is refused as corrupt, never decoded into something else or crashed on."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import CorruptionError
from ledger.state import EMPTY_ROOT
from ledger.state_pages import LEAF_REF_TAG, NODE_TAG, PAGE_TAG, decode_page, encode_page, read_page
from ledger.storage import MemoryStore, keys
from tests.unit.ledger.test_state import commit


def _pages(items: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    """Every page row of a tree over ``items``, by the hash it is filed under."""
    store = MemoryStore()
    commit(store, EMPTY_ROOT, items)
    prefix = keys.STATE_NODE
    return {key[len(prefix) :]: row for key, row in store.iterate(prefix) if row[0] == PAGE_TAG}


# pages of every shape: full, sparse, with child pages
_TREE = _pages({b"key-%d" % i: b"value-%d" % i for i in range(600)})


def test_every_page_decodes_to_its_hash_and_encodes_back_to_its_row() -> None:
    assert len(_TREE) > 40
    for page_hash, row in _TREE.items():
        root, page = read_page(row)
        assert root == page_hash
        assert decode_page(page_hash, row) == page
        assert page[page_hash][0] == NODE_TAG
        assert encode_page(page_hash, page) == (row, page)
        assert encode_page(page_hash, page, decoded=False) == (row, {})


def test_a_decoded_page_holds_its_nodes_under_their_hashes() -> None:
    for row in _TREE.values():
        _, page = read_page(row)
        for node_hash, node in page.items():
            if node[0] == LEAF_REF_TAG:
                assert hashlib.sha256(b"\x00" + node[1:]).digest() == node_hash
            else:
                assert hashlib.sha256(node).digest() == node_hash


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(min_value=0, max_value=len(_TREE) - 1),
    at=st.integers(min_value=0, max_value=10_000),
    byte=st.integers(min_value=0, max_value=255),
    how=st.sampled_from(["flip", "cut", "extend", "drop"]),
)
def test_a_damaged_row_is_refused_as_corrupt(which: int, at: int, byte: int, how: str) -> None:
    page_hash, row = list(_TREE.items())[which]
    at %= len(row)
    if how == "flip":
        damaged = row[:at] + bytes([row[at] ^ (byte or 1)]) + row[at + 1 :]
    elif how == "cut":
        damaged = row[:at]
    elif how == "extend":
        damaged = row + bytes([byte])
    else:
        damaged = row[:at] + row[at + 1 :]
    with pytest.raises(CorruptionError):
        decode_page(page_hash, damaged)


def test_a_row_that_is_not_a_page_is_named_in_the_error() -> None:
    for bad in (b"", b"\x02", b"\x00" + bytes(64), b"\x02\x00", b"\x02\x01\x00"):
        with pytest.raises(CorruptionError, match="state page received is malformed"):
            read_page(bad)


def test_encoding_a_page_whose_nodes_are_missing_is_refused() -> None:
    page_hash, row = next(iter(_TREE.items()))
    _, page = read_page(row)
    with pytest.raises(CorruptionError, match="unknown"):
        encode_page(page_hash, {})
    inner = {h: n for h, n in page.items() if h != page_hash and n[0] == NODE_TAG}
    assert inner, "the first page has internal nodes below its root"
    with pytest.raises(CorruptionError, match="unknown"):
        encode_page(page_hash, {h: n for h, n in page.items() if h not in inner})
    leaf_hash = next(h for h, n in page.items() if n[0] == LEAF_REF_TAG)
    with pytest.raises(ValueError, match="internal node"):
        encode_page(leaf_hash, page)
