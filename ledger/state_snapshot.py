"""State snapshots: the state under one root cut into chunks that each check on their own.

Format 1 (docs/formats-state.md §7). The state tree is stored as pages of four binary
levels (:mod:`ledger.state_pages`); a page names its child pages by hash. Snapshots carry
pages in their wire form (without the heights a store files their rows at: those are
not hashed, so a joining node never trusts them, and files every row of a snapshot at
the snapshot's height). A snapshot is:

* a **manifest**: the *skeleton* — the pages at the top of the tree whose subtree is too
  big for one chunk, in pre-order from the root, with the (key, value) of every leaf they
  hold inline — and, per chunk, the hashes of the subtrees (child pages of the skeleton)
  it carries. Checked against the certified state root alone: the first skeleton page
  hashes to the root, each later one is a child some earlier one names, and the chunks
  list every other child of the skeleton exactly once.
* **chunks**, each the complete subtrees under the hashes the manifest gives it: their
  pages and the (key, value) of their leaves, at most about :data:`CHUNK_BYTES`. A chunk
  is checked as it arrives, against its hashes only: each page is rehashed, every page
  and leaf its subtrees reach is in it, and nothing else is.

So a bad chunk is known as such on arrival, names the peer that sent it, and can be asked
of another peer: chunks are a function of the state only (the cut is deterministic), so
every honest node holding a snapshot of that height serves the same bytes.

Pure: no I/O but the :class:`KVReader` the snapshot is read from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ledger.digest import sha256_digest
from ledger.encoding import decode, encode
from ledger.errors import CorruptionError, DecodeError, LedgerError
from ledger.state import decode_flat_row, flat_key, flat_row, root_filing
from ledger.state_pages import (
    LEAF_REF_TAG,
    NO_HEIGHT,
    NODE_TAG,
    Page,
    check_leaf,
    file_page,
    leaf_ref,
    read_page,
    wire_page,
)
from ledger.state_proof import EMPTY_ROOT, HASH_SIZE
from ledger.storage import keys
from ledger.storage.protocol import KVReader, WriteBatch

SNAPSHOT_FORMAT = 1
CHUNK_BYTES = 1024 * 1024
"""A chunk's target size: pages and (key, value) bytes; one subtree over it is split."""
MAX_PART_BYTES = 4 * 1024 * 1024
"""Largest manifest or chunk accepted (a leaf of a huge value may push one past the target)."""
MAX_CHUNKS = 1_000_000
_LEAF_OVERHEAD = 8  # what a (key, value) pair costs besides its bytes, in the sizes


class SnapshotError(LedgerError):
    """A manifest or chunk that does not check out against what it must match."""

    code = "bad_snapshot"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A checked manifest: the skeleton's rows and, per chunk, its subtrees' hashes."""

    root: bytes
    pages: tuple[bytes, ...]
    leaves: tuple[tuple[bytes, bytes], ...]
    chunks: tuple[tuple[bytes, ...], ...]

    def encode(self) -> bytes:
        return encode(
            {
                "format": SNAPSHOT_FORMAT,
                "root": self.root,
                "pages": list(self.pages),
                "leaves": [[k, v] for k, v in self.leaves],
                "chunks": [list(c) for c in self.chunks],
            }
        )


# --- taking a snapshot ----------------------------------------------------------------------


Pace = Callable[[], None]
"""Called before each page is read: the caller may pause there (node/snapshots.py keeps a
snapshot's walk to a share of one core, so that it does not slow consensus)."""


def _no_pause() -> None:
    return None


class _Reader:
    """Pages and leaves of the stored tree, with their subtree sizes.

    Memory does not grow with the state: where a page is filed comes down the walk from
    its parent's node entry (:func:`_filings`), not from a table of every node, and a
    subtree's size is kept only where the cut needs it again — for pages over a chunk and
    their children (:meth:`size`). Both tables once held every page and leaf: ~60,000
    entries in a node of a 120,000-transaction bench, a few MB each time a snapshot was
    taken, growing with the chain (docs/performance.md, "A snapshot's memory")."""

    def __init__(self, store: KVReader, pace: Pace = _no_pause) -> None:
        self.store = store
        self.pace = pace
        self.sizes: dict[bytes, int] = {}  # pages over a chunk and their children only

    def row(self, node_hash: bytes, at: bytes) -> bytes | None:
        return self.store.get(keys.STATE_NODE + at + node_hash)

    def page(self, page_hash: bytes, at: bytes) -> tuple[bytes, Page, dict[bytes, bytes]]:
        """(wire form, decoded page, where each child page is filed) of the page filed
        at ``at``."""
        self.pace()
        row = self.row(page_hash, at)
        if row is None:
            raise CorruptionError(f"state page {page_hash.hex()} is missing from the store")
        wire, page = wire_page(page_hash, row)
        return wire, page, _filings(page)

    def leaf(self, leaf_hash: bytes, ref: bytes) -> tuple[bytes, bytes]:
        """(key, value) of a leaf: its value from its row, its key from the flat table
        (which holds the snapshot's height's values: the store is a view of that height)."""
        row = self.store.get(keys.STATE_NODE + ref[65:73] + leaf_hash) if len(ref) > 65 else None
        if row is None:
            raise CorruptionError(f"state leaf {leaf_hash.hex()} is missing from the store")
        row = check_leaf(leaf_hash, row, True)
        flat = self.store.get(flat_key(row[1:33]))
        if flat is None or leaf_ref(row) != ref[:65]:
            raise CorruptionError(f"state leaf {leaf_hash.hex()} has no key in the flat table")
        key = flat[4 : 4 + int.from_bytes(flat[:4], "big")]
        if sha256_digest(key) != row[1:33] or decode_flat_row(flat, key) != row[33:]:
            raise CorruptionError(f"the flat table is not at the snapshot's state ({key!r})")
        return key, row[33:]

    def size(self, page_hash: bytes, at: bytes) -> int:
        """Bytes of the whole subtree under a page (its pages and its leaves' pairs).
        Kept for a page over a chunk and for its children: the cut asks for those again."""
        known = self.sizes.get(page_hash)
        if known is not None:
            return known
        row, page, filings = self.page(page_hash, at)
        total = len(row)
        for leaf_hash, ref in _leaf_refs(page):
            key, value = self.leaf(leaf_hash, ref)
            total += len(key) + len(value) + _LEAF_OVERHEAD
        children = [(child, self.size(child, _at(filings, child))) for child in _children(page)]
        total += sum(size for _, size in children)
        if total > CHUNK_BYTES:
            self.sizes[page_hash] = total
            self.sizes.update(children)
        return total

    def subtree(self, page_hash: bytes, at: bytes) -> Iterator[tuple[bytes | None, bytes]]:
        """The subtree's pages (None, row) and leaves (key, value), in pre-order."""
        row, page, filings = self.page(page_hash, at)
        yield None, row
        for leaf_hash, ref in _leaf_refs(page):
            yield self.leaf(leaf_hash, ref)
        for child in _children(page):
            yield from self.subtree(child, _at(filings, child))


def _filings(page: Page) -> dict[bytes, bytes]:
    """Where the child pages and leaves a page's node entries name are filed, by hash."""
    out: dict[bytes, bytes] = {}
    for node in page.values():
        if node[0] == NODE_TAG and len(node) > 65:
            if node[65:73] != NO_HEIGHT:
                out[node[1:33]] = node[65:73]
            if node[73:81] != NO_HEIGHT:
                out[node[33:65]] = node[73:81]
    return out


def _at(filings: dict[bytes, bytes], node_hash: bytes) -> bytes:
    """Where ``node_hash`` is filed; a page no parent filed (a damaged store) is looked
    for nowhere, and reported missing by :meth:`_Reader.page`."""
    return filings.get(node_hash, NO_HEIGHT)


def _children(page: Page) -> list[bytes]:
    """The child pages a page names, by hash (an order both sides compute alike)."""
    out: list[bytes] = []
    for node in page.values():
        if node[0] == NODE_TAG:
            for child in (node[1:33], node[33:65]):
                if child != EMPTY_ROOT and child not in page:
                    out.append(child)
    return sorted(out)


def _leaf_refs(page: Page) -> list[tuple[bytes, bytes]]:
    """(leaf hash, reference) of the leaves a page holds inline, by leaf hash."""
    return sorted((h, n) for h, n in page.items() if n[0] == LEAF_REF_TAG)


def plan_snapshot(store: KVReader, root: bytes, pace: Pace = _no_pause) -> Manifest:
    """The manifest of the state under ``root`` (:func:`snapshot_chunks` gives the chunks).

    ``store`` must be a consistent view of the height whose state root is ``root``: the
    keys come from its flat table. Deterministic: the same state gives the same manifest,
    so peers holding a snapshot of one height serve the same chunks.
    """
    if root == EMPTY_ROOT:
        return Manifest(root, (), (), ())
    reader = _Reader(store, pace)
    root_at = root_filing(store, root)
    top = reader.row(root, root_at)
    if top is not None and top[:1] == b"\x00":  # a state of one key: its leaf is the root
        pair = reader.leaf(root, leaf_ref(check_leaf(root, top, True)) + root_at)
        return Manifest(root, (), (pair,), ())
    if reader.size(root, root_at) <= CHUNK_BYTES:
        return Manifest(root, (), (), ((root,),))
    pages: list[bytes] = []
    leaves: list[tuple[bytes, bytes]] = []
    groups: list[list[bytes]] = []
    fill = CHUNK_BYTES + 1  # bytes in the last group (none open yet)
    stack = [(root, root_at)]
    while stack:  # pre-order over the skeleton; the root is too big for a chunk
        page_hash, at = stack.pop()
        size = reader.size(page_hash, at)
        if size <= CHUNK_BYTES:
            if fill + size > CHUNK_BYTES:
                groups.append([])
                fill = 0
            groups[-1].append(page_hash)
            fill += size
            continue
        row, page, filings = reader.page(page_hash, at)
        pages.append(row)
        leaves.extend(reader.leaf(h, ref) for h, ref in _leaf_refs(page))
        stack.extend((child, _at(filings, child)) for child in reversed(_children(page)))
        fill = CHUNK_BYTES + 1  # a skeleton page closes the group: chunks stay contiguous
    return Manifest(root, tuple(pages), tuple(leaves), tuple(tuple(g) for g in groups))


def snapshot_chunks(store: KVReader, manifest: Manifest, pace: Pace = _no_pause) -> Iterator[bytes]:
    """Each chunk of ``manifest``'s snapshot, encoded, one at a time (``store`` and
    ``pace`` as for :func:`plan_snapshot`)."""
    if not manifest.chunks:  # an empty state, or one key: the manifest holds it all
        return
    reader = _Reader(store, pace)
    filed = {manifest.root: root_filing(store, manifest.root)}
    for row in manifest.pages:  # in pre-order: they say where the chunks' subtrees are filed
        page_hash = read_page(row)[0]
        filed.update(reader.page(page_hash, _at(filed, page_hash))[2])
    for group in manifest.chunks:
        pages: list[bytes] = []
        leaves: list[list[bytes]] = []
        for page_hash in group:
            for key, data in reader.subtree(page_hash, _at(filed, page_hash)):
                if key is None:
                    pages.append(data)
                else:
                    leaves.append([key, data])
        yield encode({"format": SNAPSHOT_FORMAT, "pages": pages, "leaves": leaves})


# --- checking what arrives ------------------------------------------------------------------


def read_manifest(data: bytes, root: bytes) -> Manifest:
    """The manifest in ``data``, checked against the certified state ``root``; anything
    else raises :class:`SnapshotError` saying what is wrong."""
    obj = _decode(data, "manifest")
    try:
        if obj.get("format") != SNAPSHOT_FORMAT or obj.get("root") != root:
            raise SnapshotError("the manifest is for another format or another state root")
        pages = _bins(obj["pages"], "pages")
        leaves = _pairs(obj["leaves"])
        chunks = obj["chunks"]
        if not isinstance(chunks, list) or len(chunks) > MAX_CHUNKS:
            raise SnapshotError("the manifest's chunk list is malformed")
        groups = tuple(tuple(_bins(c, "chunk", HASH_SIZE)) for c in chunks)
    except (KeyError, TypeError, AttributeError):
        raise SnapshotError("the manifest is malformed") from None
    manifest = Manifest(root, tuple(pages), tuple(leaves), groups)
    _check_skeleton(manifest)
    return manifest


def _check_skeleton(m: Manifest) -> None:
    if m.root == EMPTY_ROOT:
        if m.pages or m.leaves or m.chunks:
            raise SnapshotError("the manifest of an empty state holds something")
        return
    expected_leaves: dict[bytes, bytes] = {}
    if not m.pages:  # one chunk holds the whole tree, or a state of one key
        if len(m.leaves) == 1 and not m.chunks:
            expected_leaves[m.root] = b""
        elif m.leaves or [list(c) for c in m.chunks] != [[m.root]]:
            raise SnapshotError("the manifest does not cover the state root")
    wanted = {m.root}
    for row in m.pages:
        try:
            page_hash, page = read_page(row)
        except CorruptionError as exc:
            raise SnapshotError(f"a skeleton page: {exc}") from None
        if page_hash not in wanted:
            raise SnapshotError(f"skeleton page {page_hash.hex()[:16]}… is not under the root")
        wanted.remove(page_hash)
        wanted.update(_children(page))
        expected_leaves.update(_leaf_refs(page))
    listed = [h for c in m.chunks for h in c]
    if m.pages and (len(set(listed)) != len(listed) or set(listed) != wanted):
        raise SnapshotError("the manifest's chunks do not cover the skeleton's subtrees once each")
    if any(not c for c in m.chunks):
        raise SnapshotError("the manifest lists an empty chunk")
    _match_leaves(m.leaves, expected_leaves, "the manifest")


def _match_leaves(
    leaves: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]],
    expected: dict[bytes, bytes],
    where: str,
) -> None:
    """Each (key, value) is a leaf ``expected`` names (hash -> reference, or b"" for a
    root leaf), and every expected leaf is there once."""
    seen: set[bytes] = set()
    for key, value in leaves:
        kh = sha256_digest(key)
        leaf_hash = sha256_digest(b"\x00" + kh + sha256_digest(value))
        if leaf_hash not in expected or leaf_hash in seen:
            raise SnapshotError(f"{where} holds a leaf its pages do not name ({key[:40]!r})")
        seen.add(leaf_hash)
    if len(seen) != len(expected):
        raise SnapshotError(f"{where} lacks {len(expected) - len(seen)} leaves its pages name")


def read_chunk(data: bytes, roots: tuple[bytes, ...], height: int) -> list[tuple[bytes, bytes]]:
    """The rows of a chunk whose subtrees are ``roots`` (from a checked manifest of the
    snapshot of ``height``): every page rehashed, and all of it reachable from ``roots``,
    with nothing missing and nothing else; :class:`SnapshotError` otherwise. Rows:
    (storage key, value), every page and leaf filed at ``height``."""
    obj = _decode(data, "chunk")
    try:
        if obj.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError("the chunk is in another format")
        rows = _bins(obj["pages"], "pages")
        leaves = _pairs(obj["leaves"])
    except (KeyError, TypeError, AttributeError):
        raise SnapshotError("the chunk is malformed") from None
    pages: dict[bytes, tuple[bytes, Page]] = {}
    for row in rows:
        try:
            page_hash, stored, page = file_page(row, height)
        except CorruptionError as exc:
            raise SnapshotError(f"a page of the chunk: {exc}") from None
        pages[page_hash] = (stored, page)
    expected: dict[bytes, bytes] = {}
    stack, reached = list(roots), 0
    while stack:
        page_hash = stack.pop()
        found = pages.get(page_hash)
        if found is None:
            raise SnapshotError(f"the chunk lacks page {page_hash.hex()[:16]}… of its subtrees")
        reached += 1
        stack.extend(_children(found[1]))
        expected.update(_leaf_refs(found[1]))
    if reached != len(pages) or len(rows) != len(pages):
        raise SnapshotError("the chunk holds pages outside its subtrees")
    _match_leaves(leaves, expected, "the chunk")
    at = keys.height_bytes(height)
    out = [(keys.STATE_NODE + at + h, stored) for h, (stored, _) in pages.items()]
    out.extend(leaf_rows(leaves, height))
    return out


def leaf_rows(
    leaves: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]], height: int
) -> Iterator[tuple[bytes, bytes]]:
    """The two rows of each (key, value): its leaf (filed at ``height``) and its
    flat-table row."""
    at = keys.height_bytes(height)
    for key, value in leaves:
        kh = sha256_digest(key)
        leaf_hash = sha256_digest(b"\x00" + kh + sha256_digest(value))
        yield keys.STATE_NODE + at + leaf_hash, b"\x00" + kh + value
        yield flat_key(kh), flat_row(key, value)


def manifest_rows(m: Manifest, height: int) -> WriteBatch:
    """The skeleton's rows (its pages and inline leaves) and the root's filing, all at
    ``height`` (the snapshot's), in a batch."""
    batch = WriteBatch()
    at = keys.height_bytes(height)
    for row in m.pages:
        page_hash, stored, _ = file_page(row, height)
        batch.put(keys.STATE_NODE + at + page_hash, stored)
    for key, value in leaf_rows(m.leaves, height):
        batch.put(key, value)
    if m.root != EMPTY_ROOT:
        batch.put(keys.STATE_ROOT + m.root, at)
    return batch


def _decode(data: bytes, what: str) -> dict[str, object]:
    if len(data) > MAX_PART_BYTES:
        raise SnapshotError(f"the {what} is {len(data)} bytes, over {MAX_PART_BYTES}")
    try:
        obj = decode(data, max_size=MAX_PART_BYTES)
    except DecodeError as exc:
        raise SnapshotError(f"the {what} does not decode: {exc}") from None
    if not isinstance(obj, dict):
        raise SnapshotError(f"the {what} is not a map")
    return obj


def _bins(items: object, what: str, size: int | None = None) -> list[bytes]:
    if not isinstance(items, list) or not all(
        isinstance(b, bytes) and (size is None or len(b) == size) for b in items
    ):
        raise SnapshotError(f"{what} must be a list of byte strings")
    return items


def _pairs(items: object) -> list[tuple[bytes, bytes]]:
    if not isinstance(items, list):
        raise SnapshotError("leaves must be a list of [key, value]")
    out = []
    for item in items:
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(b, bytes) for b in item)
        ):
            raise SnapshotError("leaves must be a list of [key, value]")
        out.append((item[0], item[1]))
    return out
