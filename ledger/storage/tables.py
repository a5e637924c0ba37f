"""Reading LevelDB's own files, read-only, to say where a store is damaged.

LevelDB reports a damaged block as ``Corruption: block checksum mismatch`` without the
file or the keys, and an auditor needs both: which records can no longer be vouched
for. Two of its documented formats (leveldb ``doc/table_format.md`` and
``doc/log_format.md``) are enough, and both are small:

* a **table file** (``*.ldb``, ``*.sst``) ends with a 48-byte footer pointing at its
  index block; each index entry is a key at or after the last key of one data block
  (and before the next block's first key) and that block's place in the file. Every
  block is followed by its type (0 raw, 1 Snappy) and a masked CRC32C of its bytes and
  type: :func:`check_table` recomputes every one;
* the **MANIFEST** (named by ``CURRENT``) is a log of version edits, each new table
  file recorded with its smallest and largest key: :func:`table_ranges` replays them.

Keys in both are LevelDB's internal keys: the user key and 8 bytes of sequence number
and type, which are dropped here. Nothing here writes a byte.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import google_crc32c

FOOTER = 48
MAGIC = 0xDB4775248B80FB57
TRAILER = 5  # block type and masked CRC32C
MASK_DELTA = 0xA282EAD8
LOG_BLOCK = 32768
LOG_HEADER = 7
NEW_FILE, DELETED_FILE = 7, 6


class FormatError(ValueError):
    """Bytes that are not what the format says (the damage itself, often)."""


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the little-endian base-128 integer at ``pos``."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise FormatError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _prefixed(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = varint(data, pos)
    if pos + size > len(data):
        raise FormatError("truncated string")
    return data[pos : pos + size], pos + size


def unmask(masked: int) -> int:
    rot = (masked - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def snappy_decompress(data: bytes) -> bytes:
    """Raw Snappy (the format LevelDB compresses blocks with), for index blocks."""
    size, pos = varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # a literal: its length - 1 in the tag, or in 1..4 bytes after it
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            out += data[pos : pos + length + 1]
            pos += length + 1
            continue
        if kind == 1:
            length, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise FormatError("bad Snappy copy")
        for _ in range(length):  # copies may overlap what they write
            out.append(out[-offset])
    if len(out) != size:
        raise FormatError("Snappy length mismatch")
    return bytes(out)


def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) of every entry of an (uncompressed) table block."""
    if len(block) < 4:
        raise FormatError("block too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise FormatError("bad restart count")
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = varint(block, pos)
        own, pos = varint(block, pos)
        size, pos = varint(block, pos)
        key = key[:shared] + block[pos : pos + own]
        pos += own
        entries.append((key, block[pos : pos + size]))
        pos += size
    return entries


def _read_block(data: bytes, offset: int, size: int) -> tuple[bytes | None, int]:
    """(the block's contents, or None when its checksum fails; its compression type)."""
    end = offset + size
    if end + TRAILER > len(data):
        return None, 0
    kind = data[end]
    stored = unmask(struct.unpack_from("<I", data, end + 1)[0])
    if google_crc32c.value(data[offset : end + 1]) != stored:
        return None, kind
    return data[offset:end], kind


def _contents(data: bytes, offset: int, size: int) -> bytes | None:
    raw, kind = _read_block(data, offset, size)
    if raw is None:
        return None
    return snappy_decompress(raw) if kind == 1 else raw


@dataclass(frozen=True, slots=True)
class TableCheck:
    """A table file's blocks: the index keys (user keys) and which data blocks are bad."""

    separators: list[bytes]  # index key of data block i: >= its last key, < the next's first
    bad_blocks: list[int]
    index_damaged: bool = False


def table_index(data: bytes) -> list[tuple[bytes, int, int]] | None:
    """(index key as a user key, offset, size) of every data block of a table file's
    bytes; None when the footer or the index block is damaged."""
    if len(data) < FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        return None
    try:
        pos = len(data) - FOOTER
        for _ in range(2):  # the meta-index handle, then the index handle
            offset, pos = varint(data, pos)
            size, pos = varint(data, pos)
        index = _contents(data, offset, size)
        if index is None:
            return None
        out = []
        for key, handle in block_entries(index):
            block_offset, at = varint(handle, 0)
            block_size, _ = varint(handle, at)
            out.append((key[:-8], block_offset, block_size))
        return out
    except FormatError:
        return None


def check_table(path: str) -> TableCheck:
    """Recompute the checksum of every block of the table file at ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    index = table_index(data)
    if index is None:
        return TableCheck([], [], index_damaged=True)
    bad = [i for i, (_, at, size) in enumerate(index) if _read_block(data, at, size)[0] is None]
    return TableCheck([key for key, _, _ in index], bad)


def table_ranges(data_dir: str) -> dict[int, tuple[bytes, bytes]]:
    """Table file number -> (smallest, largest) user key, from the current MANIFEST."""
    try:
        with open(os.path.join(data_dir, "CURRENT")) as f:
            name = f.read().strip()
        with open(os.path.join(data_dir, name), "rb") as f:
            log = f.read()
    except OSError:
        return {}
    files: dict[int, tuple[bytes, bytes]] = {}
    for record in _log_records(log):
        try:
            _apply_edit(record, files)
        except FormatError:
            continue  # a damaged edit: the files it names keep no range
    return files


def _log_records(log: bytes) -> list[bytes]:
    """The records of a LevelDB log file (fragments joined; damaged ones skipped)."""
    records, partial, pos = [], b"", 0
    while pos + LOG_HEADER <= len(log):
        left = LOG_BLOCK - pos % LOG_BLOCK
        if left < LOG_HEADER:
            pos += left
            continue
        crc, size, kind = struct.unpack_from("<IHB", log, pos)
        body = log[pos + LOG_HEADER : pos + LOG_HEADER + size]
        pos += LOG_HEADER + size
        if kind == 0 or google_crc32c.value(bytes([kind]) + body) != unmask(crc):
            partial = b""
            continue
        partial = body if kind in (1, 2) else partial + body
        if kind in (1, 4):
            records.append(partial)
            partial = b""
    return records


def _apply_edit(edit: bytes, files: dict[int, tuple[bytes, bytes]]) -> None:
    pos = 0
    while pos < len(edit):
        tag, pos = varint(edit, pos)
        if tag in (2, 3, 4, 9):  # log number, next file, last sequence, previous log
            _, pos = varint(edit, pos)
        elif tag == 1:  # comparator name
            _, pos = _prefixed(edit, pos)
        elif tag == 5:  # compaction pointer: level, key
            _, pos = varint(edit, pos)
            _, pos = _prefixed(edit, pos)
        elif tag == DELETED_FILE:
            _, pos = varint(edit, pos)
            number, pos = varint(edit, pos)
            files.pop(number, None)
        elif tag == NEW_FILE:
            _, pos = varint(edit, pos)
            number, pos = varint(edit, pos)
            _, pos = varint(edit, pos)  # file size
            smallest, pos = _prefixed(edit, pos)
            largest, pos = _prefixed(edit, pos)
            files[number] = (smallest[:-8], largest[:-8])
        else:
            raise FormatError(f"unknown version edit tag {tag}")
