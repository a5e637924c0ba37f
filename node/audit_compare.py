"""The audit's last step: every stored chain row, byte for byte, against the re-executed one.

:class:`~node.audit.ChainAuditor` replays the chain into its scratch store
(:class:`~node.audit_scratch.ScratchStore` in memory, or :class:`~node.audit_scratch.DiskScratch`
on disk); given the audited store (``compare_with``), it then calls :func:`compare_stores`,
which walks both stores in key order and compares every row the chain writes (blocks,
block-hash index, certificates, receipts, tx index, log nodes, state nodes and values,
contract indexes, meta, committed evidence and the offence index), both ways. Node-local
rows (signer state, the evidence pool, pruning bookkeeping) are not part of the chain and
are skipped. Findings name the height, the record and what differs (:func:`describe_key`
reads a storage key the way an auditor would).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ledger.storage import keys
from ledger.storage.protocol import KVReader
from node.audit import (
    MAX_FINDINGS,
    SKIPPED_TABLES,
    AuditReport,
    Finding,
    add_finding,
)
from node.audit_pruned import PrunedState
from node.audit_scratch import ScratchStore
from node.audit_tree import rows_outside

if TYPE_CHECKING:
    from node.audit import ChainAuditor


def compare_stores(
    auditor: ChainAuditor,
    audited: KVReader,
    report: AuditReport,
    below: int | None = None,
    pruned: PrunedState | None = None,
    skip: tuple[bytes, ...] = (),
) -> None:
    """Every chain row of ``audited`` equals the re-executed one, and nothing is extra.

    ``below``: the replay stopped at that height, so only the rows that the blocks before
    it alone decide are compared (their blocks, certificates and receipts, keyed by height).
    ``pruned``: the store prunes state; a row it lacks that pruning explains is no finding.
    ``skip``: tables (sorted prefixes) compared elsewhere: their rows are not read.
    """
    reference = auditor.scratch
    expected: Iterator[tuple[bytes, bytes]] = (
        kv for kv in rows_outside(reference, skip) if not kv[0].startswith(keys.PRUNE)
    )
    stored = (kv for kv in rows_outside(audited, skip) if not kv[0].startswith(SKIPPED_TABLES))
    if below is None and isinstance(reference, ScratchStore):
        rows = chain_rows(audited)
        if rows == reference.data:  # one C-level comparison; the walk below names differences
            report.rows_compared += len(rows)
            return
        del rows
    if below is not None:
        expected = (kv for kv in expected if _decided_before(kv[0], below))
        stored = (kv for kv in stored if _decided_before(kv[0], below))
    exp, got = next(expected, None), next(stored, None)
    while exp is not None or got is not None:
        if got is None or (exp is not None and exp[0] < got[0]):
            assert exp is not None
            if pruned is None or not pruned.explains(exp[0]):
                _note(auditor, report, exp[0], "missing from the store", expected=exp[1])
            exp = next(expected, None)
        elif exp is None or got[0] < exp[0]:
            _note(auditor, report, got[0], "in the store, but the chain never wrote it", got[1])
            got = next(stored, None)
        else:
            report.rows_compared += 1
            if exp[1] != got[1]:
                _note(auditor, report, got[0], _difference(got[1], exp[1]), got[1], exp[1])
            exp, got = next(expected, None), next(stored, None)


def _decided_before(key: bytes, height: int) -> bool:
    """A block, certificate or receipt row of a height below ``height``."""
    table = key[:2]
    if table not in (keys.BLOCK, keys.CERT, keys.RECEIPT) or len(key) < 10:
        return False
    return int.from_bytes(key[2:10], "big") < height


def chain_rows(store: KVReader) -> dict[bytes, bytes]:
    """Every row of ``store`` but the node-local ones, in one dict."""
    rows = dict(store.iterate(b""))
    for table in SKIPPED_TABLES:
        for key, _ in store.iterate(table):
            del rows[key]
    return rows


def _note(
    auditor: ChainAuditor,
    report: AuditReport,
    key: bytes,
    problem: str,
    stored: bytes | None = None,
    expected: bytes | None = None,
) -> None:
    if len(report.findings) >= MAX_FINDINGS:
        report.more_findings += 1
        return
    height, record = describe_key(auditor, key)
    add_finding(report, Finding(height, record, problem, key=key, stored=stored, expected=expected))


def _difference(stored: bytes, expected: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(stored, expected, strict=False)) if a != b), None)
    if at is None:
        return f"stored value is {len(stored)} bytes, re-executed {len(expected)}"
    return (
        f"differs from the re-executed value at byte {at} "
        f"(stored {stored[at]:#04x}, expected {expected[at]:#04x})"
    )


def describe_key(auditor: ChainAuditor, key: bytes) -> tuple[int | None, str]:
    """(height, what record) for a storage key, as an auditor reads it."""
    table, rest = key[:2], key[2:]
    ref = auditor.scratch.get(key)
    at = auditor.scratch.written_height(key)
    if table == keys.BLOCK and len(rest) == 8:
        return int.from_bytes(rest, "big"), "stored block"
    if table == keys.CERT and len(rest) == 8:
        return int.from_bytes(rest, "big"), "stored certificate"
    if table == keys.RECEIPT and len(rest) == 12:
        height = int.from_bytes(rest[:8], "big")
        return height, f"receipt of transaction {int.from_bytes(rest[8:], 'big')}"
    if table == keys.BLOCK_HASH:
        return at, f"block-hash index entry {rest.hex()[:16]}…"
    if table == keys.TX_INDEX:
        return at, f"tx index entry of transaction {rest.hex()}"
    if table == keys.LOG and len(rest) == 9:
        last_leaf, level = int.from_bytes(rest[:8], "big"), rest[8]
        height = bisect.bisect_right(auditor.log_sizes, last_leaf) + 1
        index = last_leaf >> level
        return height, f"log node (level {level}, index {index})"
    if table == keys.LOG:
        return at, "log size record"
    if table == keys.STATE_NODE and len(rest) == 40:
        return int.from_bytes(rest[:8], "big"), f"state node {rest[8:].hex()[:16]}…"
    if table == keys.STATE_ROOT:
        return at, f"state root filing of {rest.hex()[:16]}…"
    if table == keys.STATE_LEAF:
        row = ref if ref is not None else b""
        name = row[4 : 4 + int.from_bytes(row[:4], "big")].decode("utf-8", "replace")
        return at, f"state value of {name!r}" if name else f"state value {rest.hex()[:16]}…"
    if table == keys.INDEX:
        return at, f"contract index entry {rest.decode('utf-8', 'replace')!r}"
    if table == keys.META:
        return None, f"meta record {rest.decode('utf-8', 'replace')!r}"
    if table == keys.VALSET and len(rest) == 8:
        return int.from_bytes(rest, "big") - 2, "validator-set change"
    if table == keys.COMMITTED_EVIDENCE and len(rest) == 10:
        height = int.from_bytes(rest[:8], "big")
        return height, f"committed evidence {int.from_bytes(rest[8:], 'big')}"
    if table == keys.OFFENCE and len(rest) == 45:
        offender, height, round_ = rest[:32], int.from_bytes(rest[32:40], "big"), rest[40:44]
        step = ("proposal", "prevote", "precommit")[rest[44]] if rest[44] < 3 else str(rest[44])
        return at, (
            f"offence index entry of {offender.hex()[:16]}… "
            f"({step} at height {height} round {int.from_bytes(round_, 'big')})"
        )
    return at, f"record {key.hex()[:40]}"
