"""Writing and reading one state page's row: the inner loops of ``ledger.state_pages``.

The layout (store format 3, the stored form with heights and the wire form without) is
described in :mod:`ledger.state_pages`, which checks a page's root and its hash around
these two functions and is the module the rest of the ledger calls:

* :func:`write_page` — the row of the page whose root is ``root``, from the page's
  nodes by hash (looked up in ``old``, the page it replaces, then in ``nodes``), and,
  when ``decoded``, the decoded page;
* :func:`read_page_row` — (root hash, decoded page) of a row, every inline node
  rehashed; a malformed row raises :class:`CorruptionError` naming ``name`` (a hash
  is named by its hex, made only then).

This file is the pure form; ``make compile`` also builds its C twin,
``ledger/page_codec.c`` (hand-written, like ``ledger/digest.c``), which the import
system then prefers under the rules of ``ledger.compiled``. Why a twin: every page an
update writes and every page it reads goes through here (about two written and two read
a changed key), and the compiled Python makes a bytes object for every slice, child
reference and joined piece of a row, where C writes the row into one buffer and makes
only the page's own entries. tests/unit/ledger/test_page_codec.py holds both forms to
the same rows, pages and errors. This module is deliberately not among the mypyc modules:
compiled callers would then call its compiled functions directly, never the twin.
"""

from __future__ import annotations

from ledger.digest import sha256_digest
from ledger.errors import CorruptionError

# The layout's constants, as ledger.state_pages defines them (a test checks they agree;
# imported from there they would be a cycle, and that module needs its own as C constants).
LEVELS = 4  # binary levels a page holds
HASH_SIZE = 32
HEIGHT_SIZE = 8
NODE_SIZE = 1 + 2 * HASH_SIZE  # an internal node or a leaf reference, as hashed
NO_HEIGHT = b"\xff" * HEIGHT_SIZE  # a fourth-level node's child that is not a page
EMPTY_ROOT = bytes(HASH_SIZE)
# A position of a page's row starts with the tag of what it holds: nothing, an inline
# node, a child page (a row also starts with PAGE_TAG), a leaf (in its reference form).
EMPTY_TAG = 0
NODE_TAG = 1
PAGE_TAG = 2
LEAF_REF_TAG = 3

Page = dict[bytes, bytes]


def write_page(
    root: bytes, nodes: Page, old: Page, decoded: bool, stored: bool
) -> tuple[bytes, Page]:
    """(row, decoded page: empty unless ``decoded``) of the page whose root is the
    internal node ``root``; ``stored``: with the heights of what it refers to."""
    writer = _PageWriter(nodes, old, decoded, stored)
    writer.node(root, 0, b"")
    return b"".join(writer.out), writer.page


def read_page_row(row: bytes, name: str | bytes, stored: bool, at: bytes) -> tuple[bytes, Page]:
    """(root hash, decoded page) of ``row``: in the stored form if ``stored``, else the
    wire form, whose references then get the height ``at`` (none when empty)."""
    if len(row) < 2 or row[0] != PAGE_TAG or row[1] != NODE_TAG:  # its root is an inline node
        raise malformed(name)
    reader = _PageReader(row, name, stored, at)
    root = reader.node(0)
    if reader.pos != len(row):
        raise malformed(name)
    return root, reader.page


def malformed(name: str | bytes) -> CorruptionError:
    """The error of a row that is not a page: ``name``, or the hex of the hash it is."""
    return CorruptionError(
        f"state page {name if isinstance(name, str) else name.hex()} is malformed"
    )


class _PageWriter:
    """One page being encoded: its positions in pre-order, by a descent."""

    __slots__ = ("decoded", "nodes", "old", "out", "page", "stored")

    def __init__(self, nodes: Page, old: Page, decoded: bool, stored: bool) -> None:
        self.nodes = nodes
        self.old = old
        self.decoded = decoded
        self.stored = stored
        self.out: list[bytes] = [b"\x02"]
        self.page: Page = {}

    def node(self, node_hash: bytes, rel: int, at: bytes) -> None:
        """The position of ``node_hash``, ``rel`` levels below the page's root; ``at``:
        where it is filed if it is a child page (its parent says: ``ff`` × 8 for a leaf)."""
        if node_hash == EMPTY_ROOT:
            self.out.append(b"\x00")
            return
        if rel == LEVELS and self.stored and len(at) == HEIGHT_SIZE and at != NO_HEIGHT:
            self.out.append(b"\x02" + at + node_hash)  # a child page, filed where it says
            return
        node = self.old.get(node_hash)
        if node is None:
            node = self.nodes.get(node_hash)
        if node and node[0] == LEAF_REF_TAG:
            if not self.stored:
                self.out.append(node[:NODE_SIZE])
            elif len(node) == NODE_SIZE + HEIGHT_SIZE:
                self.out.append(node)  # its encoding is its reference form
            else:
                raise CorruptionError(f"state leaf {node_hash.hex()} of a new page is not filed")
        elif rel == LEVELS:
            if not self.stored:
                self.out.append(b"\x02" + node_hash)
                return
            raise CorruptionError(f"state page {node_hash.hex()} of a new page is not filed")
        elif not node or node[0] != NODE_TAG or len(node) < NODE_SIZE:
            raise CorruptionError(f"state node {node_hash.hex()} of a new page is unknown")
        else:
            self.out.append(b"\x01")
            self.node(node[1:33], rel + 1, node[65:73])
            self.node(node[33:65], rel + 1, node[73:81])
        if self.decoded:
            self.page[node_hash] = node


class _PageReader:
    """One page row being decoded: a descent over its positions in pre-order."""

    __slots__ = ("at", "child_at", "end", "name", "page", "pos", "row", "stored")

    def __init__(self, row: bytes, name: str | bytes, stored: bool, at: bytes) -> None:
        self.row = row
        self.name = name
        self.stored = stored
        self.at = at
        self.pos = 1
        self.end = len(row)
        self.page: Page = {}
        self.child_at = NO_HEIGHT  # where the child page just read is filed

    def node(self, rel: int) -> bytes:
        """The hash of the node at the current position, ``rel`` levels below the page's
        root; its inline nodes and leaves join :attr:`page`."""
        row, pos = self.row, self.pos
        tag = row[pos] if pos < self.end else -1
        pos += 1
        if tag == NODE_TAG and rel < LEVELS:
            self.pos = pos
            left = self.node(rel + 1)
            left_at = self.child_at
            right = self.node(rel + 1)
            node = b"\x01" + left + right
            digest = sha256_digest(node)
            if rel == LEVELS - 1 and (self.stored or self.at):
                node = node + left_at + self.child_at
            self.page[digest] = node
            self.child_at = NO_HEIGHT
            return digest
        self.child_at = NO_HEIGHT
        if tag == LEAF_REF_TAG:
            end = pos + 2 * HASH_SIZE
            if self.stored:
                end += HEIGHT_SIZE
            if end <= self.end:
                self.pos = end
                ref = row[pos - 1 : end]  # its encoding is its reference form (0x03 ...)
                digest = sha256_digest(b"\x00" + ref[1:NODE_SIZE])
                self.page[digest] = ref + self.at if self.at else ref
                return digest
        elif tag == EMPTY_TAG:
            self.pos = pos
            return EMPTY_ROOT
        elif tag == PAGE_TAG and rel == LEVELS:
            at = self.at
            if self.stored:
                at = row[pos : pos + HEIGHT_SIZE]
                pos += HEIGHT_SIZE
            if pos + HASH_SIZE <= self.end:
                self.pos = pos + HASH_SIZE
                child = row[pos : self.pos]
                if child != EMPTY_ROOT and (not self.stored or at != NO_HEIGHT):
                    self.child_at = at
                    return child
        raise malformed(self.name)
