"""The page codec of store format 3 (ledger/state_pages.py): every page a tree writes
decodes to the hash it is filed under and encodes back to the same row, its wire form
(what snapshots carry) reads back to the same nodes, and a damaged row is refused as
corrupt, never decoded into something else or crashed on — except for the heights that
say where the rows it refers to are filed, which are not hashed: a damaged one only
sends a walk to a row that is not there."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import CorruptionError
from ledger.state import EMPTY_ROOT, StateTree
from ledger.state_pages import (
    HEIGHT_SIZE,
    LEAF_REF_TAG,
    NO_HEIGHT,
    NODE_TAG,
    PAGE_TAG,
    decode_page,
    encode_page,
    file_page,
    read_page,
    wire_page,
)
from ledger.storage import MemoryStore, WriteBatch, keys
from tests.unit.ledger.state_kit import commit

_ITEMS = {b"key-%d" % i: b"value-%d" % i for i in range(600)}


def _store() -> tuple[MemoryStore, bytes]:
    """A tree over 600 keys written in two blocks (rows filed at heights 1 and 2)."""
    store = MemoryStore()
    root = commit(store, EMPTY_ROOT, dict(list(_ITEMS.items())[:400]))
    return store, commit(store, root, dict(list(_ITEMS.items())[400:]))


def _pages(store: MemoryStore) -> dict[bytes, bytes]:
    """Every page row of the store, by the hash it is filed under."""
    prefix = keys.STATE_NODE
    return {key[len(prefix) + 8 :]: row for key, row in store.iterate(prefix) if row[0] == PAGE_TAG}


# pages of every shape: full, sparse, with child pages
_TREE = _pages(_store()[0])


def test_every_page_decodes_to_its_hash_and_encodes_back_to_its_row() -> None:
    assert len(_TREE) > 40
    for page_hash, row in _TREE.items():
        page = decode_page(page_hash, row)
        assert page[page_hash][0] == NODE_TAG
        assert encode_page(page_hash, page) == (row, page)
        assert encode_page(page_hash, page, decoded=False) == (row, {})
        wire, same = wire_page(page_hash, row)
        assert same == page
        leaves = [n for n in page.values() if n[0] == LEAF_REF_TAG]
        children = [
            at for n in page.values() if n[0] == NODE_TAG for at in (n[65:73], n[73:81]) if at
        ]
        refs = len(leaves) + sum(1 for at in children if at != NO_HEIGHT)
        assert refs and len(wire) == len(row) - HEIGHT_SIZE * refs
        root, bare = read_page(wire)
        assert root == page_hash and bare == {h: n[:65] for h, n in page.items()}
        assert encode_page(page_hash, page, filed=False)[0] == wire
        h, stored, filed = file_page(wire, 7)
        assert h == page_hash and decode_page(page_hash, stored) == filed
        heights = {n[65:73] for n in filed.values() if n[0] == LEAF_REF_TAG} | {
            at for n in filed.values() if n[0] == NODE_TAG for at in (n[65:73], n[73:81]) if at
        }
        assert heights - {NO_HEIGHT} == {(7).to_bytes(8, "big")}


def test_a_decoded_page_holds_its_nodes_under_their_hashes() -> None:
    for page_hash, row in _TREE.items():
        page = decode_page(page_hash, row)
        for node_hash, node in page.items():
            heights = [node[65:73]] if node[0] == LEAF_REF_TAG else [node[65:73], node[73:81]]
            for at in heights:  # the two blocks that wrote rows (or no child page there)
                assert not at or at == NO_HEIGHT or int.from_bytes(at, "big") in (1, 2)
            node = node[:65]
            if node[0] == LEAF_REF_TAG:
                assert hashlib.sha256(b"\x00" + node[1:]).digest() == node_hash
            else:
                assert hashlib.sha256(node).digest() == node_hash


def damage(row: bytes, at: int, byte: int, how: str) -> bytes:
    """``row`` with one byte flipped, or cut at, one appended, dropped or inserted."""
    at %= len(row)
    if how == "flip":
        return row[:at] + bytes([row[at] ^ (byte or 1)]) + row[at + 1 :]
    if how == "cut":
        return row[:at]
    if how == "extend":
        return row + bytes([byte])
    if how == "drop":
        return row[:at] + row[at + 1 :]
    return row[:at] + bytes([byte]) + row[at:]  # insert


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(min_value=0, max_value=len(_TREE) - 1),
    at=st.integers(min_value=0, max_value=10_000),
    byte=st.integers(min_value=0, max_value=255),
    how=st.sampled_from(["flip", "cut", "extend", "drop"]),
)
def test_a_damaged_row_is_refused_as_corrupt(which: int, at: int, byte: int, how: str) -> None:
    page_hash, row = list(_TREE.items())[which]
    damaged = damage(row, at, byte, how)
    try:
        page = decode_page(page_hash, damaged)
    except CorruptionError:
        return
    # Not refused: only a height was hit (they are not hashed: the next test), the nodes
    # are the same.
    original = decode_page(page_hash, row)
    assert how == "flip" and page != original
    assert {h: n[:65] for h, n in page.items()} == {h: n[:65] for h, n in original.items()}


def test_a_row_that_is_not_a_page_is_named_in_the_error() -> None:
    for bad in (b"", b"\x02", b"\x00" + bytes(64), b"\x02\x00", b"\x02\x01\x00"):
        with pytest.raises(CorruptionError, match="state page received is malformed"):
            read_page(bad)


def test_a_damaged_height_sends_a_walk_to_a_missing_row_never_to_another_value() -> None:
    store, root = _store()
    missing = 0
    for key, row in list(store.iterate(keys.STATE_NODE)):
        if row[0] != PAGE_TAG:
            continue
        leaf = next((n for n in decode_page(key[10:], row).values() if n[0] == 3), None)
        if leaf is None:
            continue
        end = row.index(leaf) + len(leaf)
        damaged = row[: end - 1] + bytes([row[end - 1] ^ 0x04]) + row[end:]  # its height
        batch = WriteBatch()
        batch.put(key, damaged)
        store.write(batch)
        tree = StateTree(store, root)
        for k, value in _ITEMS.items():
            try:
                assert tree.get_at(root, k) == value
            except CorruptionError as exc:
                assert "missing from the store" in str(exc)
                missing += 1
        batch = WriteBatch()
        batch.put(key, row)
        store.write(batch)
    assert missing  # the damaged references of the live pages are on keys' paths


def test_encoding_a_page_whose_nodes_are_missing_is_refused() -> None:
    page_hash, row = next(iter(_TREE.items()))
    page = decode_page(page_hash, row)
    with pytest.raises(CorruptionError, match="unknown"):
        encode_page(page_hash, {})
    inner = {h: n for h, n in page.items() if h != page_hash and n[0] == NODE_TAG}
    assert inner, "the first page has internal nodes below its root"
    with pytest.raises(CorruptionError, match="unknown"):
        encode_page(page_hash, {h: n for h, n in page.items() if h not in inner})
    unfiled = {h: n[:65] for h, n in page.items()}
    with pytest.raises(CorruptionError, match="not filed"):
        encode_page(page_hash, unfiled)
    leaf_hash = next(h for h, n in page.items() if n[0] == LEAF_REF_TAG)
    with pytest.raises(ValueError, match="internal node"):
        encode_page(leaf_hash, page)
