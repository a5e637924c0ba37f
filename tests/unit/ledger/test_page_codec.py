"""``ledger.page_codec`` in both of its forms: the C twin gives the pure module's rows,
pages and errors, for every page of a real tree in every form (stored, wire, wire filed
at a height) and for damaged rows and damaged or missing nodes, byte for byte.

The process runs one form (the C twin when the build is current: ``make test``, CI);
the pure module is also loaded here from its own file under another name, so a compiled
run compares both. In a pure run both are the pure module and the comparison is empty,
but the properties checked against the tree (round trips) still hold.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ledger.page_codec
from ledger import compiled, state_pages
from ledger.errors import CorruptionError
from tests.unit.ledger.test_state_pages import _TREE, damage


def _pure_form() -> ModuleType:
    path = Path(ledger.page_codec.__file__).resolve().parent / "page_codec.py"
    spec = importlib.util.spec_from_file_location("ledger_page_codec_pure", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PURE = _pure_form()
LOADED = ledger.page_codec
PAGES = list(_TREE.items())
AT = (7).to_bytes(8, "big")


def _outcome(module: ModuleType, name: str, *args: Any) -> tuple[str, Any]:
    """What ``module.name(*args)`` gives: its result, or its error's type and message."""
    try:
        return "ok", getattr(module, name)(*args)
    except (CorruptionError, ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


def _same(name: str, *args: Any) -> tuple[str, Any]:
    pure, loaded = _outcome(PURE, name, *args), _outcome(LOADED, name, *args)
    assert loaded == pure
    if pure[0] == "ok":  # the same dict order too (callers merge pages in this order)
        assert list(loaded[1][1]) == list(pure[1][1])
    return pure


def test_the_layout_constants_are_the_state_pages_ones() -> None:
    assert PURE.LEVELS == state_pages.PAGE_LEVELS
    assert PURE.HEIGHT_SIZE == state_pages.HEIGHT_SIZE
    assert PURE.NODE_SIZE == state_pages.NODE_SIZE
    assert PURE.NO_HEIGHT == state_pages.NO_HEIGHT
    assert PURE.EMPTY_ROOT == state_pages.EMPTY_ROOT
    assert (PURE.NODE_TAG, PURE.PAGE_TAG, PURE.LEAF_REF_TAG) == (
        state_pages.NODE_TAG,
        state_pages.PAGE_TAG,
        state_pages.LEAF_REF_TAG,
    )


def test_the_c_twin_is_loaded_when_it_was_built() -> None:
    assert compiled.is_compiled(LOADED) == ("ledger/page_codec.c" in compiled.built_sources())


def test_every_page_of_a_tree_reads_and_writes_the_same_in_both_forms() -> None:
    for page_hash, row in PAGES:
        kind, (root, page) = _same("read_page_row", row, "p", True, b"")
        assert kind == "ok" and root == page_hash
        for decoded in (True, False):
            assert _same("write_page", page_hash, page, {}, decoded, True) == (
                "ok",
                (row, page if decoded else {}),
            )
            assert _same("write_page", page_hash, {}, page, decoded, True)[1][0] == row
        kind, (wire, _) = _same("write_page", page_hash, page, {}, True, False)
        assert kind == "ok"
        bare = _same("read_page_row", wire, "p", False, b"")[1]
        assert bare[0] == page_hash
        filed = _same("read_page_row", wire, "p", False, AT)[1]
        assert filed[0] == page_hash
        assert _same("write_page", page_hash, filed[1], {}, True, True)[0] == "ok"
        # the wire form read as if stored, and the stored form read as wire: refused alike
        _same("read_page_row", wire, "p", True, b"")
        _same("read_page_row", row, "p", False, AT)


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(min_value=0, max_value=len(PAGES) - 1),
    at=st.integers(min_value=0, max_value=10_000),
    byte=st.integers(min_value=0, max_value=255),
    how=st.sampled_from(["flip", "cut", "extend", "drop", "insert"]),
    stored=st.booleans(),
)
def test_a_damaged_row_reads_the_same_in_both_forms(
    which: int, at: int, byte: int, how: str, stored: bool
) -> None:
    page_hash, row = PAGES[which]
    if not stored:
        row = PURE.write_page(
            page_hash, PURE.read_page_row(row, "p", True, b"")[1], {}, False, False
        )[0]
    damaged = damage(row, at, byte, how)
    for height in (b"", AT):
        _same("read_page_row", damaged, "damaged", stored, height)
        _same("read_page_row", damaged, page_hash, stored, height)


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(min_value=0, max_value=len(PAGES) - 1),
    picks=st.lists(st.integers(min_value=0, max_value=10_000), max_size=4),
    how=st.sampled_from(["drop", "cut", "retag", "unfile"]),
    stored=st.booleans(),
    decoded=st.booleans(),
)
def test_missing_or_damaged_nodes_are_refused_alike(
    which: int, picks: list[int], how: str, stored: bool, decoded: bool
) -> None:
    page_hash, row = PAGES[which]
    page = dict(PURE.read_page_row(row, "p", True, b"")[1])
    hashes = list(page)
    for pick in picks:
        h = hashes[pick % len(hashes)]
        if h not in page:
            continue
        node = page[h]
        if how == "drop":
            del page[h]
        elif how == "cut":
            page[h] = node[: pick % (len(node) + 1)]
        elif how == "retag":
            page[h] = bytes([pick % 5]) + node[1:]
        else:
            page[h] = node[:65]
    half = dict(list(page.items())[: len(page) // 2])
    rest = dict(list(page.items())[len(page) // 2 :])
    _same("write_page", page_hash, rest, half, decoded, stored)


def test_the_c_twin_refuses_arguments_of_other_types() -> None:
    if not compiled.is_compiled(LOADED):
        pytest.skip("the pure form is running: no C twin in this process")
    page_hash, row = PAGES[0]
    with pytest.raises(TypeError):
        LOADED.write_page(page_hash, [], {}, True, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LOADED.write_page(page_hash[:31], {}, {}, True, True)
    with pytest.raises(TypeError):
        LOADED.read_page_row(bytearray(row), "p", True, b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="8 bytes"):
        LOADED.read_page_row(row, "p", False, b"\x01")
