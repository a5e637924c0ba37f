"""The offline audit in parallel segments (``audit verify --home --workers N``, N >= 2).

See the comment below and docs/audit.md, "Parallel segments", for why re-executing
segments from their certified state roots proves the same as one sequential replay.
:class:`node.audit.ChainAuditor` runs it and falls back to the sequential replay, which
names findings, whenever anything does not check out.
"""

from __future__ import annotations

import mmap
import multiprocessing
import multiprocessing.pool
import multiprocessing.queues
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from contracts.engine import genesis_state
from ledger.block import Block, BlockHeader
from ledger.digest import sha256_digest
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.log import SIZE_KEY
from ledger.state import NodeCache, StateTree, decode_flat_row, flat_key
from ledger.storage import OverlayStore, WriteBatch, keys
from ledger.storage.protocol import KVReader
from ledger.votes import CommitCertificate
from node.audit import (
    AuditFailure,
    AuditReport,
    Finding,
    Progress,
    StoreSource,
)
from node.audit_compare import chain_rows
from node.chain import ChainStore, offence_key_of
from node.executor import Executor
from node.sigcache import SignatureCache
from node.sigcheck import default_sigterm, die_with_parent, verify_signatures

# --- the offline audit in parallel segments ----------------------------------------------------
#
# A store keeps every historic state root (no pruning) and its tree nodes are content-addressed,
# so the execution of blocks [a, b) can be checked from the stored tree at the certified state
# root of header a-1, independently of blocks before a. Each worker process takes segments,
# decodes and checks their blocks (links, the certificate each carries, every signature, the tx
# root), re-executes them from that root (reading every tree node with its hash checked) and
# returns every row the segment writes. The main process checks that the segments join (each
# starts from the header the previous one ended with, under the certificate that one used),
# that no transaction repeats across segments, and that the rows of all segments, applied in
# order over the genesis rows, are exactly the audited store's, and that no offence is
# committed in two segments (each segment checks its own blocks' evidence, and that no
# offence repeats within it). docs/audit.md gives the
# argument; anything that does not check out sends the audit back to the sequential replay,
# which names the finding.


@dataclass(slots=True)
class _Shared:
    """What the worker processes inherit at fork (never pickled)."""

    genesis: Genesis
    rows: dict[bytes, bytes]
    tip: int
    progress: multiprocessing.queues.SimpleQueue[tuple[int, int]] | None
    position: dict[bytes, int] = field(default_factory=dict)  # row key -> its number
    values: list[bytes] = field(default_factory=list)  # the rows' values by number
    marks: mmap.mmap | None = None  # one byte per (segment, row), shared with the workers


_SHARED: _Shared | None = None
_AUDITED_TABLES = (keys.STATE_NODE, keys.STATE_ROOT)  # read from the audited rows
_NODE_CACHE = NodeCache()  # per worker process, across its segments


@dataclass(slots=True)
class SegmentResult:
    first: int
    end: int
    number: int = 0  # the segment's place in the chain (0 for the first)
    failure: str | None = None
    base_hash: bytes = b""  # the header hash the segment started from (genesis hash for 1)
    first_cert_hash: bytes | None = None  # hash of the certificate block ``first`` carries
    last_hash: bytes = b""  # hash of block end - 1
    end_cert_hash: bytes = b""  # hash of the certificate committed with block end - 1
    txs: int = 0
    tx_hashes: bytes = b""
    offences: list[bytes] = field(default_factory=list)  # offence keys of its evidence
    written: int = 0  # rows the segment wrote (deletes included)
    # The rows it wrote that differ from the audited store's (deletes of stored rows, and
    # values a later segment must overwrite); the equal ones are marked in _Shared.marks.
    differing: dict[bytes, bytes | None] = field(default_factory=dict)


class SegmentStore:
    """A segment's store: its own writes (deletes kept), a few seeded rows, the audited rows.

    Falls through to the audited rows only for state tree nodes (hash-checked by the tree)
    and Merkle log nodes (their roots are checked against the certified headers); flat state
    rows are read through :class:`SegmentTree`; everything else a segment reads it wrote.
    """

    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self.rows = rows
        self.data: dict[bytes, bytes | None] = {}
        self.seed: dict[bytes, bytes] = {}
        self.at_start: dict[bytes, bytes | None] = {}  # flat key -> value under the start root
        self._valsets: dict[bytes, bytes | None] | None = None  # the audited change rows
        self._own_valsets: dict[bytes, bytes | None] = {}  # the ones this segment wrote

    def get(self, key: bytes) -> bytes | None:
        data = self.data
        if key in data:
            return data[key]
        table = key[:2]
        if table in _AUDITED_TABLES or (table == keys.LOG and key != SIZE_KEY):
            return self.rows.get(key)
        return self.seed.get(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Only the validator-set changes are scanned (``ChainStore.validators_at``): the
        audited rows' and the segment's own. A forged audited row cannot pass: every set
        used must hash to the ``validators_hash`` of a header the segment re-derives."""
        if prefix != keys.VALSET:
            raise NotImplementedError("a segment store is only read by key")
        if self._valsets is None:
            self._valsets = {k: v for k, v in self.rows.items() if k.startswith(keys.VALSET)}
        merged = self._valsets | self._own_valsets
        picked = sorted(
            (k, v)
            for k, v in merged.items()
            if v is not None and (start is None or (k <= start if reverse else k >= start))
        )
        return iter(picked[::-1] if reverse else picked)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self.data.update(batch.items())
        self._own_valsets.update((k, v) for k, v in batch.items() if k.startswith(keys.VALSET))

    def close(self) -> None:
        pass


class SegmentTree(StateTree):
    """State read at the segment's start root for keys the segment has not written yet."""

    def __init__(
        self, store: OverlayStore, root: bytes, segment: SegmentStore, start: bytes
    ) -> None:
        super().__init__(store, root, cache=_NODE_CACHE, verify_nodes=True)
        self.overlay = store
        self.segment = segment
        self.start = start

    def get(self, key: bytes) -> bytes | None:
        flat = flat_key(sha256_digest(key))
        row = self.overlay.get(flat)
        if row is not None:
            return decode_flat_row(row, key)
        if flat in self.segment.data or self.overlay.batch.get(flat)[0]:
            return None  # deleted in this segment
        at_start = self.segment.at_start  # values under the start root never change
        if flat in at_start:
            return at_start[flat]
        value = at_start[flat] = self.get_at(self.start, key)
        return value


class _SegmentExecutor(Executor):
    def __init__(self, chain: ChainStore, segment: SegmentStore, start: bytes) -> None:
        super().__init__(chain, SignatureCache(capacity=1))
        self.segment = segment
        self.start = start

    def state_tree(self, store: OverlayStore, root: bytes) -> StateTree:
        return SegmentTree(store, root, self.segment, self.start)


def _light_block(raw: bytes | None) -> Any:
    """A block's map without the strict checks (its own segment makes them)."""
    if raw is None:
        raise LedgerError("missing block")
    return msgpack.unpackb(raw, raw=False, strict_map_key=True)


def _audit_segment(job: tuple[int, int, int]) -> SegmentResult:
    """Worker: check and re-execute blocks [first, end); any error is a failure."""
    number, first, end = job
    try:
        return _run_segment(number, first, end)
    except AuditFailure as exc:
        return SegmentResult(first, end, number, failure=str(exc.finding))
    except Exception as exc:
        return SegmentResult(first, end, number, failure=f"{type(exc).__name__}: {exc}")


def _run_segment(number: int, first: int, end: int) -> SegmentResult:
    shared = _SHARED
    assert shared is not None, "only called in the audit's worker processes"
    genesis, rows = shared.genesis, shared.rows
    result = SegmentResult(first, end, number)
    segment = SegmentStore(rows)
    chain, start, result.base_hash = _segment_base(segment, genesis, first)
    executor = _SegmentExecutor(chain, segment, start)
    hashes: list[bytes] = []
    pending: Block | None = None
    for height in range(first, end):
        block = _segment_block(rows, height)
        if height == first and block.last_cert is not None:
            result.first_cert_hash = block.last_cert.hash
        items = [(height, i, tx.sender, tx.body, tx.signature) for i, tx in enumerate(block.txs)]
        if verify_signatures((genesis.chain_id, items)):
            raise AuditFailure(Finding(height, "transaction", "bad signature"))
        if pending is not None:
            assert block.last_cert is not None, "only block 1 carries no certificate"
            _commit_segment_block(executor, pending, block.last_cert, shared)
        try:
            executor.validate_block(block, None, certified=True)  # links, tx root, execution
        except LedgerError as exc:
            raise AuditFailure(Finding(height, "block header", str(exc))) from None
        hashes.extend(tx.hash for tx in block.txs)
        result.txs += len(block.txs)
        result.offences.extend(offence_key_of(e) for e in block.evidence)
        pending = block
    assert pending is not None, "segments are not empty"
    if end <= shared.tip:
        cert = CommitCertificate.from_obj(_light_block(rows.get(keys.block_key(end)))["last_cert"])
    else:
        cert = CommitCertificate.decode(rows[keys.cert_key(pending.height)])
        validators = executor.validators(pending.height)
        cert.verify(validators, genesis.chain_id, height=pending.height, block_hash=pending.hash)
    _commit_segment_block(executor, pending, cert, shared)
    result.last_hash, result.end_cert_hash = pending.hash, cert.hash
    result.tx_hashes = b"".join(hashes)
    _compare_rows(result, segment.data, shared)
    return result


def _segment_base(
    segment: SegmentStore, genesis: Genesis, first: int
) -> tuple[ChainStore, bytes, bytes]:
    """The chain a segment starting at ``first`` executes on (genesis, or the head record
    of block ``first - 1`` seeded from its stored header), its start state root and the
    hash it builds on."""
    if first == 1:
        chain = ChainStore(segment, genesis)
        chain.initialise(genesis_state(genesis))
        return chain, chain.genesis_state_root(), genesis.hash
    rows = segment.rows
    prev = BlockHeader.from_obj(_light_block(rows.get(keys.block_key(first - 1)))["header"])
    segment.seed[keys.GENESIS_HASH] = genesis.hash
    segment.seed[SIZE_KEY] = prev.log_size.to_bytes(8, "big")
    seed = WriteBatch()
    chain = ChainStore(segment, genesis)  # after the seed: it reads the genesis hash
    chain.put_head(seed, prev)
    segment.seed.update((k, v) for k, v in seed.items() if v is not None)
    return chain, prev.state_root, prev.hash


def _segment_block(rows: dict[bytes, bytes], height: int) -> Block:
    """The stored block at ``height``, or an :class:`AuditFailure` naming what is wrong."""
    try:
        # Not the strict decode: whatever this block's bytes are, the tx root (checked
        # before execution) authenticates every transaction body as packed from them,
        # the header and certificate are re-encoded to get their hashes, and the row
        # comparison at the end finds stored bytes that are not exactly the canonical
        # re-encoding; either sends the audit to the replay, which decodes strictly.
        block = Block.from_obj(_light_block(rows.get(keys.block_key(height))), decoded=True)
    except (KeyError, LedgerError, ValueError, TypeError) as exc:
        raise AuditFailure(Finding(height, "block", f"does not decode: {exc}")) from None
    if block.height != height:
        raise AuditFailure(Finding(height, "block", f"holds block {block.height}"))
    return block


def _compare_rows(
    result: SegmentResult, written: dict[bytes, bytes | None], shared: _Shared
) -> None:
    """Mark the rows the segment wrote that equal the audited store's; keep the others.

    Most rows are written once (blocks, receipts, tx index, tree and log nodes) and are
    settled here, in the worker; only rows that differ come back to the main process:
    those a later segment overwrites (current state values, contract indexes, the head)
    and anything wrong.
    """
    values, position = shared.values, shared.position
    assert shared.marks is not None, "set up by ParallelAudit.run"
    marks = bytearray(len(position))
    differing = result.differing
    get_position = position.get
    for key, value in written.items():
        at = get_position(key)
        if at is not None and values[at] == value:
            marks[at] = 1
        else:
            differing[key] = value
    result.written = len(written)
    at = result.number * len(position)
    shared.marks[at : at + len(position)] = marks


def _commit_segment_block(
    executor: Executor, block: Block, cert: CommitCertificate, shared: _Shared
) -> None:
    executed = executor.executed(block.hash)
    assert executed is not None, "validated blocks are remembered until committed"
    executor.commit(executed, cert)
    if shared.progress is not None:
        shared.progress.put((1, len(block.txs)))


class ParallelAudit:
    """The offline audit of a store, in segments over ``workers`` processes."""

    def __init__(self, genesis: Genesis, workers: int, progress: Progress | None) -> None:
        self.genesis = genesis
        self.workers = workers
        self.progress = progress

    def run(self, store: KVReader) -> AuditReport | None:
        """The report of a chain that checks out, or None: replay it sequentially then."""
        global _SHARED
        rows = chain_rows(store)
        tip = StoreSource(store).tip()
        if tip == 0:
            return None
        segments = self._segments(rows, tip)
        ctx = multiprocessing.get_context("fork")
        queue = ctx.SimpleQueue() if self.progress is not None else None
        position = dict(zip(rows, range(len(rows)), strict=True))
        marks = mmap.mmap(-1, max(1, len(segments) * len(rows)))  # shared: MAP_SHARED
        _SHARED = _Shared(self.genesis, rows, tip, queue, position, list(rows.values()), marks)
        jobs = [(number, first, end) for number, (first, end) in enumerate(segments)]
        try:
            with default_sigterm():
                pool = ctx.Pool(
                    min(self.workers, len(segments)),
                    initializer=die_with_parent,
                    initargs=(os.getpid(),),
                )
            with pool:
                pending = pool.map_async(_audit_segment, jobs, chunksize=1)
                results = self._wait(pending, queue, tip)
            report = self._join(results, tip)
            if report is None or not _rows_match(results, len(rows), position, marks):
                return None
            report.rows_compared = len(rows)
            return report
        finally:
            _SHARED = None
            marks.close()

    def _segments(self, rows: dict[bytes, bytes], tip: int) -> list[tuple[int, int]]:
        """About four segments per worker, of similar size in block bytes."""
        sizes = [len(rows.get(keys.block_key(h), b"")) for h in range(1, tip + 1)]
        count = max(1, min(tip, self.workers * 4))
        target = sum(sizes) / count
        out: list[tuple[int, int]] = []
        first, acc = 1, 0
        for height, size in enumerate(sizes, start=1):
            acc += size
            if acc >= target * (len(out) + 1) and height < tip and len(out) < count - 1:
                out.append((first, height + 1))
                first = height + 1
        out.append((first, tip + 1))
        return out

    def _wait(
        self,
        pending: multiprocessing.pool.MapResult[SegmentResult],
        queue: multiprocessing.queues.SimpleQueue[tuple[int, int]] | None,
        tip: int,
    ) -> list[SegmentResult]:
        blocks = txs = 0
        while not pending.ready():
            pending.wait(0.1)
            while queue is not None and not queue.empty():
                done, n = queue.get()
                blocks, txs = blocks + done, txs + n
                assert self.progress is not None
                self.progress(blocks, tip, txs)
        return pending.get()

    def _join(self, results: list[SegmentResult], tip: int) -> AuditReport | None:
        """The report if the segments join into the chain 1 .. tip (rows not compared)."""
        previous: SegmentResult | None = None
        for result in results:
            if result.failure is not None:
                return None
            if previous is None:
                if result.first != 1 or result.base_hash != self.genesis.hash:
                    return None
            elif (
                result.first != previous.end
                or result.base_hash != previous.last_hash
                or result.first_cert_hash != previous.end_cert_hash
            ):
                return None
            previous = result
        if previous is None or previous.end != tip + 1:
            return None
        hashes = b"".join(r.tx_hashes for r in results)
        total = len(hashes) // 32
        if len({hashes[i : i + 32] for i in range(0, len(hashes), 32)}) != total:
            return None  # a transaction repeats
        offences = [o for r in results for o in r.offences]
        if len(set(offences)) != len(offences):
            return None  # an offence is committed twice
        report = AuditReport(self.genesis.chain_id, tip, heights=tip, txs=total)
        report.segments = len(results)
        report.evidence = len(offences)
        return report


def _rows_match(
    results: list[SegmentResult], n: int, position: dict[bytes, int], marks: bytes | mmap.mmap
) -> bool:
    """Whether the segments' rows, applied in order, are exactly the audited store's ``n``.

    Segment j marked (in ``marks``, row j of n bytes) every stored row it wrote with the stored
    value, and returned the rows it wrote otherwise. The last write of a row decides:
    a stored row must have been marked by some segment after the last one that wrote it
    differently, and a row that is not stored must have been deleted by its last writer.
    Every stored row must have been written (marked) by some segment.
    """
    last_differing: dict[bytes, tuple[int, bytes | None]] = {}
    for result in results:  # in chain order
        for key, value in result.differing.items():
            last_differing[key] = (result.number, value)
    for key, (number, value) in last_differing.items():
        at = position.get(key)
        if at is None:
            if value is not None:
                return False  # written, never deleted, but not in the store
        elif not any(marks[later * n + at] for later in range(number + 1, len(results))):
            return False  # its last write differs from the store
    covered = 0
    for number in range(len(results)):
        covered |= int.from_bytes(marks[number * n : (number + 1) * n], "big")
    return n == 0 or covered.to_bytes(n, "big").count(0) == 0  # no stored row unwritten
