"""The auditor's check of a whole chain from genesis (pure: no click, no HTTP).

:class:`ChainAuditor` reads blocks in height order from a :class:`BlockSource`
(a stopped node's store, or blocks downloaded from a node) and, for every block,
checks that

* it decodes canonically and links to the previous block (height, ``prev_hash``,
  increasing time, chain id, genesis validator set, proposer is a validator);
* the certificate that committed it carries >2/3 of the genesis voting power:
  block h's certificate is the ``last_cert`` that block h+1 carries; the tip's
  comes from the source;
* every transaction signature verifies (a process pool over chunks, while the
  main process executes);
* the tx root, and after re-execution with :class:`~node.executor.Executor` on a
  fresh in-memory store initialised from the genesis, the log root, state root,
  results root: the re-executed header must be byte-identical;
* every piece of equivocation evidence it commits: both signatures, by a genesis
  validator (the round's proposer for proposals), a real equivocation (two different
  signed messages for one height, round and step), a height in the window, an offence
  not committed before nor twice in the block; and the evidence root over the pieces.

Given the audited store (``compare_with``), it finally compares every row the
chain writes (blocks, block-hash index, certificates, receipts, tx index, log
nodes, state nodes and values, contract indexes, meta) byte for byte with the
re-executed store, both ways (committed evidence and the offence index included):
:func:`node.audit_compare.compare_stores`. Node-local rows (signer state, the
evidence pool) are not part of the chain and are skipped. Findings name the height,
the record and what differs (:func:`node.audit_compare.describe_key` reads a storage
key the way an auditor would).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import multiprocessing.queues
import os
import time
from array import array
from collections.abc import Callable, Iterator
from multiprocessing.pool import Pool
from typing import Protocol

from contracts.engine import genesis_state
from ledger.block import Block
from ledger.errors import LedgerError
from ledger.evidence import describe_evidence
from ledger.genesis import Genesis
from ledger.state_prune import oldest_state_height
from ledger.storage import keys
from ledger.storage.protocol import KVReader
from ledger.tx import Transaction
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from node.audit_findings import (
    MAX_FINDINGS,
    AuditFailure,
    AuditReport,
    Finding,
    add_finding,
    bad_signature,
    genesis_mismatch,
)
from node.audit_links import LinkCheck, Verify
from node.audit_pruned import PrunedState
from node.audit_scratch import DiskScratch, ScratchStore
from node.audit_tree import (
    TREE_TABLES,
    SplitScratch,
    TreeBeside,
    TreeBesideExecutor,
    TreeDiverged,
)
from node.chain import ChainStore
from node.collector import settled
from node.executor import Executor, InvalidEvidence
from node.sigcache import SignatureCache, payload_signatures, record_good
from node.sigcheck import default_sigterm, die_with_parent, verify_batch, verify_signatures

__all__ = [  # what the audit's other modules and the CLI use (the findings' types are
    "MAX_FINDINGS",  # node/audit_findings.py's, named here with the engine)
    "SKIPPED_TABLES",
    "AuditFailure",
    "AuditReport",
    "BlockSource",
    "ChainAuditor",
    "Finding",
    "Progress",
    "StoreSource",
    "add_finding",
    "bad_signature",
    "check_payloads_ahead",
    "genesis_mismatch",
]

# node-local, not part of the chain: signer state, evidence pool, pruning bookkeeping
SKIPPED_TABLES = (keys.SIGNER, keys.EVIDENCE, keys.PRUNE)
Progress = Callable[[int, int, int], None]  # (height done, tip, transactions done)


class BlockSource(Protocol):
    """Raw blocks in height order, and the certificate of the tip."""

    def tip(self) -> int: ...

    def blocks(self) -> Iterator[tuple[int, bytes | None]]:
        """(height, canonical block bytes or None when missing) for 1 .. tip."""
        ...

    def tip_certificate(self) -> bytes | None: ...


class StoreSource:
    """The chain in a (stopped node's) store; the tip is its highest stored block."""

    def __init__(self, store: KVReader) -> None:
        self.store = store

    def tip(self) -> int:
        for key, _ in self.store.iterate(keys.BLOCK, reverse=True):
            return int.from_bytes(key[len(keys.BLOCK) :], "big")
        return 0

    def blocks(self) -> Iterator[tuple[int, bytes | None]]:
        for height in range(1, self.tip() + 1):
            yield height, self.store.get(keys.block_key(height))

    def tip_certificate(self) -> bytes | None:
        return self.store.get(keys.cert_key(self.tip()))


def _verifier(pool: Pool | None) -> Verify:
    """Signature checks in one of the pool's processes, or here when there is none."""
    if pool is None:
        return verify_signatures
    return lambda job: list(pool.apply(verify_signatures, (job,)))


def check_payloads_ahead(chain_id: str, txs: list[Transaction], pool: Pool) -> None:
    """Have the pool verify the signatures inside ``txs``' payloads (a meter's over its
    reading); each good one is recorded in :mod:`ledger.verdicts` as its answer comes
    back (the pool's result thread), where execution finds it."""
    checks = payload_signatures(txs)
    if not checks:
        return
    signed = [(key, signature, message) for key, signature, message, _ in checks]
    pool.apply_async(
        verify_batch,
        ((chain_id, [], signed),),
        callback=lambda result: record_good(checks, result[1]),
    )


def _context() -> multiprocessing.context.BaseContext:
    """Fork where the platform has it (no re-import of ``__main__``), else spawn.

    The pool is created before any thread of ours starts (progress display,
    block prefetch), and its workers only verify signatures.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class ChainAuditor:
    """Re-check a chain from genesis; see the module docstring for what is checked."""

    def __init__(
        self,
        genesis: Genesis,
        *,
        workers: int | None = None,
        chunk_txs: int = 4000,
        progress: Progress | None = None,
        scratch_dir: str | None = None,
        second_copy: str | None = None,
    ) -> None:
        self.genesis = genesis
        self.workers = (os.cpu_count() or 2) if workers is None else workers
        self.chunk_txs = chunk_txs
        self.progress = progress
        self.scratch_dir = scratch_dir
        self.second_copy = second_copy  # the audited store's, for the tree's process
        self.tree_beside: TreeBeside | None = None  # the state tree's process, replaying
        self.tree_comparing: TreeBeside | None = None  # ... then comparing its tables
        self._passes = 0
        self._fresh()

    def _fresh(self) -> None:
        """The replay's state at the genesis: re-executed rows (in memory, or streaming in
        a LevelDB store in scratch_dir, one per pass), chain, executor, per-height figures."""
        self._passes += 1
        self.rows: ScratchStore | DiskScratch = (  # what the replay writes
            ScratchStore()
            if self.scratch_dir is None
            else DiskScratch(os.path.join(self.scratch_dir, f"rows-{self._passes}"))
        )
        self.scratch: ScratchStore | DiskScratch | SplitScratch = self.rows  # ... and reads
        self.chain = ChainStore(self.rows, self.genesis)
        self.chain.initialise(genesis_state(self.genesis))
        self.executor = Executor(self.chain, SignatureCache(capacity=1))
        # By height - 1, 8 bytes each (all that grows with the chain when streaming):
        self.log_sizes = array("q")  # header.log_size
        self.tx_counts = array("q")  # transactions re-executed up to that height
        self.tx_count = 0
        self.evidence_count = 0
        self.tip = 0

    # --- the replay -----------------------------------------------------------------------

    def run(self, source: BlockSource, *, compare_with: KVReader | None = None) -> AuditReport:
        """Audit the chain ``source`` serves (against the stored rows of ``compare_with``).

        Python's collector is set as a started node sets it (node/collector.py) while the
        audit runs: it re-executes what the nodes executed, and with the interpreter's
        defaults the collector walked every block's live objects hundreds of times."""
        with settled():
            return self._audit(source, compare_with)

    def _audit(self, source: BlockSource, compare_with: KVReader | None) -> AuditReport:
        started = time.perf_counter()
        oldest = 0 if compare_with is None else oldest_state_height(compare_with)
        self.executor.track_retired = oldest > 0  # what node.audit_pruned needs
        self.executor.index_retired = oldest > 0
        if (
            compare_with is not None
            and oldest == 0  # segments start from stored historic roots: none when pruned
            and self.workers >= 2
            and isinstance(source, StoreSource)
            and source.store is compare_with
            and isinstance(self.scratch, ScratchStore)  # segments hold the store in memory
            and "fork" in multiprocessing.get_all_start_methods()
        ):
            from node.audit_segments import ParallelAudit

            parallel = ParallelAudit(self.genesis, self.workers, self.progress).run(compare_with)
            if parallel is not None:
                parallel.seconds = time.perf_counter() - started
                return parallel
            # Something did not check out: replay sequentially, which names the finding.
        tip = self.tip = source.tip()
        pool = None
        if self.workers > 0 and tip > 0:
            with default_sigterm():
                # Its workers end with the audit, however it ends (SIGKILL too): a forked
                # worker left waiting would also keep the scratch directory's owner lock.
                pool = _context().Pool(
                    self.workers, initializer=die_with_parent, initargs=(os.getpid(),)
                )
        try:
            report, first_bad = self._replays(source, tip, pool, oldest)
        finally:
            if pool is not None:
                pool.terminate()
        try:
            return self._finish(report, first_bad, oldest, compare_with, started)
        finally:
            if self.tree_comparing is not None:
                self.tree_comparing.stop()
                self.tree_comparing = None

    def _finish(
        self,
        report: AuditReport,
        first_bad: int | None,
        oldest: int,
        compare_with: KVReader | None,
        started: float,
    ) -> AuditReport:
        report.heights, report.txs = self.chain.head().height, self.tx_count
        if first_bad is not None:  # re-executed past it (signatures are checked beside)
            report.heights = min(report.heights, first_bad - 1)
            report.txs = self.tx_counts[report.heights - 1] if report.heights else 0
        report.evidence = self.evidence_count
        report.linked = max(report.linked, report.heights)
        report.oldest_state = oldest
        if compare_with is not None and report.genesis_mismatch is None:
            self._compare(compare_with, report, first_bad)
        report.findings.sort(key=lambda f: (f.height is None, f.height or 0))
        report.seconds = time.perf_counter() - started
        report.streamed = not isinstance(self.scratch, ScratchStore)
        self.scratch.close()
        return report

    def _compare_beside(self, store: KVReader, report: AuditReport, beside: TreeBeside) -> None:
        """Every stored row: the tree's tables by its process (against the store's second
        copy) while this one compares the rest; if the tree's do not all match, every
        table here, which names the rows that differ as the replay always has."""
        from node.audit_compare import compare_stores  # it imports this module

        before = (report.rows_compared, len(report.findings), report.more_findings)
        compare_stores(self, store, report, skip=TREE_TABLES)
        rows, equal = beside.comparison()
        assert isinstance(self.rows, DiskScratch), "the tree runs beside a streamed replay"
        self.scratch = SplitScratch(self.rows, beside.store())
        if equal:
            report.rows_compared += rows
            return
        report.rows_compared, report.more_findings = before[0], before[2]
        del report.findings[before[1] :]
        compare_stores(self, store, report)

    def _replays(
        self, source: BlockSource, tip: int, pool: Pool | None, oldest: int
    ) -> tuple[AuditReport, int | None]:
        """The replay, with the state tree in a process beside it where it can be
        (:mod:`node.audit_tree`); if anything does not check out there, once more with the
        tree in this process, which names the first problem."""
        report = AuditReport(self.genesis.chain_id, tip)
        rows = self.rows
        if not isinstance(rows, DiskScratch) or oldest or self.workers < 2 or not tip:
            return report, self._replay(source, tip, pool, report)
        path = os.path.join(self.scratch_dir or "", f"tree-{self._passes}")
        beside = self.tree_beside = TreeBeside.start(path, rows, self.chain, self.second_copy)
        self.executor = TreeBesideExecutor(self.chain, beside)
        try:
            if self._replay(source, tip, pool, report) is None:  # else _go_on raised
                beside.finish()
                self.tree_comparing = beside  # it compares its tables next; _audit stops it
                report.tree_beside = True
                return report, None
        except TreeDiverged:
            pass
        finally:
            if self.tree_comparing is not beside:
                beside.stop()
            self.tree_beside = None
        self.scratch.close()
        self._fresh()
        self.tip = tip
        report = AuditReport(self.genesis.chain_id, tip)
        return report, self._replay(source, tip, pool, report)

    def _compare(self, store: KVReader, report: AuditReport, first_bad: int | None) -> None:
        """Every stored row, or after a bad block the rows the blocks before it decide."""
        from node.audit_compare import compare_stores  # it imports this module

        if first_bad is None and self.tree_comparing is not None:
            self._compare_beside(store, report, self.tree_comparing)
            return
        if first_bad is None:
            pruned = None
            if report.oldest_state:
                pruned = PrunedState(self.scratch, report.oldest_state)
            compare_stores(self, store, report, pruned=pruned)
            if pruned is not None:
                report.not_checked.append(pruned.summary(report.tip))
            return
        below = min(first_bad, report.heights + 1)  # committed: validated and certified
        compare_stores(self, store, report, below=below)
        report.not_checked.append(
            f"stored rows: only the blocks, certificates and receipts of heights 1 to "
            f"{below - 1} were compared byte for byte; the state, log, indexes and every "
            "record of later heights were not (they need the replay past the bad block)"
        )

    def _replay(
        self, source: BlockSource, tip: int, pool: Pool | None, report: AuditReport
    ) -> int | None:
        """Re-execute every block; from the first that does not check out (returned), go on
        with the checks that do not need state (:mod:`node.audit_links`)."""
        chunk: list[Block] = []
        size = 0
        pending: Block | None = None
        broken: Finding | None = None  # a block that is missing or does not decode
        blocks = iter(source.blocks())
        for height, raw in blocks:
            try:
                block = self._decode(height, raw)
            except AuditFailure as exc:
                broken = exc.finding
                break
            chunk.append(block)
            size += len(block.txs) + 1
            if size >= self.chunk_txs:
                pending, found = self._chunk(chunk, pending, pool)
                if found:
                    return self._go_on(found, chunk, None, blocks, source, pool, report)
                chunk, size = [], 0
        pending, found = self._chunk(chunk, pending, pool)
        if found or broken is not None:
            return self._go_on(found or [], chunk, broken, blocks, source, pool, report)
        try:
            if pending is not None:
                self._commit_tip(pending, source.tip_certificate())
            if self.chain.head().height < tip:
                raise AuditFailure(Finding(self.chain.head().height + 1, "block", "missing"))
        except AuditFailure as exc:
            return self._go_on([exc.finding], [], None, iter(()), source, pool, report)
        return None

    def _go_on(
        self,
        found: list[Finding],
        held: list[Block],
        broken: Finding | None,
        rest: Iterator[tuple[int, bytes | None]],
        source: BlockSource,
        pool: Pool | None,
        report: AuditReport,
    ) -> int:
        """Record the first bad block's findings, then check every later block's links,
        certificates, signatures and roots (not its state): see :mod:`node.audit_links`."""
        if self.tree_beside is not None:
            raise TreeDiverged("a finding: start over with the tree in the replay")
        findings = [*found, *([broken] if broken is not None else [])]
        report.findings.extend(findings)
        first_bad = min(f.height or 1 for f in findings)
        if report.genesis_mismatch is not None:
            return first_bad

        def note(
            height: int, record: str, problem: str, *, tx: tuple[int, Transaction] | None = None
        ) -> None:
            add_finding(
                report, bad_signature(height, *tx) if tx else Finding(height, record, problem)
            )

        links = LinkCheck(self.genesis, first_bad, self._known_sets(first_bad), note)
        later = [b for b in held if b.height >= first_bad]
        if not later or later[0].height != first_bad:
            links.block(first_bad, None, None)  # it is the missing or undecodable one
        for block in later:
            links.block(block.height, block, None)
        links.signatures(later, _verifier(pool))
        if broken is not None and (broken.height or 0) > first_bad:
            links.block(broken.height or 0, None, broken.problem)
        batch: list[Block] = []
        for height, raw in rest:
            try:
                block = self._decode(height, raw)
            except AuditFailure as exc:
                links.block(height, None, exc.finding.problem)
                continue
            links.block(height, block, None)
            batch.append(block)
            if sum(len(b.txs) for b in batch) >= self.chunk_txs:
                links.signatures(batch, _verifier(pool))
                batch = []
            if self.progress is not None:
                self.progress(height, self.tip, self.tx_count)
        links.signatures(batch, _verifier(pool))
        links.tip(self.tip, source.tip_certificate())
        report.linked = links.checked_to
        report.not_checked.extend(links.summary(self.tip))
        return first_bad

    def _known_sets(self, first_bad: int) -> dict[bytes, ValidatorSet]:
        """The validator sets in force at the first bad block and the next, as established
        by blocks before it (a change takes effect two heights after the block deciding it)."""
        sets = (self.executor.validators(first_bad), self.executor.validators(first_bad + 1))
        return {s.hash: s for s in sets}

    def _chunk(
        self, blocks: list[Block], pending: Block | None, pool: Pool | None
    ) -> tuple[Block | None, list[Finding]]:
        """Verify a run of blocks' signatures in the pool while executing them here: the
        findings at the first height that does not check out (none: all did).

        The signatures inside payloads (a meter's over its reading) go to the pool first:
        execution checks each of them, and finds a good verdict (:mod:`ledger.verdicts`)
        for those the pool has verified by the time it gets there — all but the first
        block's, about — instead of paying for Ed25519 on this process's core (3.8 % of an
        offline audit's samples, measured). A bad one has no verdict: execution checks it
        and refuses the reading, as it would have."""
        if pool is not None:
            txs = [tx for block in blocks for tx in block.txs]
            check_payloads_ahead(self.genesis.chain_id, txs, pool)
        items = [
            (b.height, i, tx.sender, tx.body, tx.signature)
            for b in blocks
            for i, tx in enumerate(b.txs)
        ]
        job = (self.genesis.chain_id, items)
        result = pool.apply_async(verify_signatures, (job,)) if pool is not None else None
        found: list[Finding] = []
        try:
            for block in blocks:
                if pending is not None:
                    assert block.last_cert is not None, "only block 1 carries no certificate"
                    self._commit(pending, block.last_cert)
                pending = self._validate(block)
        except AuditFailure as exc:
            found.append(exc.finding)
        bad = result.get() if result is not None else verify_signatures(job)
        for pos in bad:
            height, index, _, _, _ = items[pos]
            tx = next(b for b in blocks if b.height == height).txs[index]
            found.append(bad_signature(height, index, tx))
        if not found:
            return pending, []
        first = min(f.height or 0 for f in found)
        return pending, [f for f in found if (f.height or 0) == first]

    def _decode(self, height: int, raw: bytes | None) -> Block:
        if raw is None:
            raise AuditFailure(Finding(height, "block", "missing"))
        try:
            block = Block.decode(raw)
        except LedgerError as exc:
            finding = Finding(height, "block", f"stored bytes do not decode: {exc}")
            raise AuditFailure(finding) from None
        if block.height != height:
            raise AuditFailure(Finding(height, "block", f"holds block {block.height}"))
        return block

    def _validate(self, block: Block) -> Block:
        """Link, certificate-of-parent and root checks, then re-execution."""
        h, head, genesis = block.header, self.chain.head(), self.genesis
        problem = None
        if h.height == 1 and h.prev_hash != genesis.hash:
            raise AuditFailure(genesis_mismatch(h.prev_hash, genesis.hash))
        if h.prev_hash != head.block_hash:
            problem = "prev_hash does not link to the previous block (hash chain broken)"
        elif h.chain_id != genesis.chain_id:
            problem = "chain id differs from the genesis"
        elif h.validators_hash != self.executor.validators(h.height).hash:
            problem = "the validator set differs from the one in force at this height"
        elif h.proposer not in self.executor.validators(h.height):
            problem = "the proposer is not a validator of this height"
        elif h.time_ms <= head.time_ms:
            problem = "time is not after the previous block's"
        if problem is None:
            try:
                block.check_tx_root()
                if self.tree_beside is not None:
                    self.tree_beside.claimed = h.state_root  # checked when the tree answers
                self.executor.validate_block(block, None, certified=True)
            except InvalidEvidence as exc:
                offender = self.executor.validators(exc.evidence.height)
                names = {v.public_key: v.name for v in offender.validators}
                what = describe_evidence(exc.evidence, names.get(exc.evidence.offender))
                record = f"evidence {exc.index} ({what}, hash {exc.evidence.hash.hex()[:16]}…)"
                raise AuditFailure(Finding(h.height, record, exc.problem)) from None
            except LedgerError as exc:
                problem = str(exc).removeprefix(f"block {h.height}: ")
        if problem is not None:
            raise AuditFailure(Finding(h.height, "block header", problem))
        return block

    def _commit_tip(self, block: Block, raw: bytes | None) -> None:
        record = f"certificate {block.height} (the tip's)"
        if raw is None:
            raise AuditFailure(Finding(block.height, record, "missing"))
        try:
            cert = CommitCertificate.decode(raw)
            cert.verify(
                self.executor.validators(block.height),
                self.genesis.chain_id,
                height=block.height,
                block_hash=block.hash,
            )
        except LedgerError as exc:
            raise AuditFailure(Finding(block.height, record, str(exc))) from None
        self._commit(block, cert)

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        """Commit a validated block to the scratch store with its (verified) certificate."""
        executed = self.executor.executed(block.hash)
        assert executed is not None, "validated blocks are remembered until committed"
        self.rows.height = block.height
        self.executor.commit(executed, cert)
        self.log_sizes.append(block.header.log_size)
        self.tx_count += len(block.txs)
        self.tx_counts.append(self.tx_count)
        self.evidence_count += len(block.evidence)
        if self.progress is not None:
            self.progress(block.height, self.tip, self.tx_count)
