"""Auditing a block-pruned store: what its headers and kept blocks still prove.

A node with ``[storage] block_keep_heights`` keeps, below its oldest kept block, only
each height's header and commit certificate (ledger/block_prune.py). The full audit
(:mod:`node.audit`) re-executes every block from genesis, which such a store cannot
give; reporting its missing blocks as tampering would be false, and re-executing from
the stored state of the oldest block would trust rows the audit is there to check.
So this audit checks what needs no re-execution, and says plainly what it could not:

* **every height from 1 to the tip**: the header decodes, is of its height and chain,
  links to the previous one by hash (block 1 to the genesis) with a later time; its
  validator set is the one the previous certified header named (block 1: the genesis
  set) — the stored set row must hash to it — and its certificate carries more than 2/3
  of that set's power for exactly that header; the header's ``last_cert_hash`` is the
  hash of the stored certificate of the height before. By induction from genesis, no
  header or certificate can be changed without a finding (the light client's check).
* **every kept block** (the oldest kept to the tip): its header is the certified one
  (it is the header checked above), the tx root, the evidence root, every transaction
  signature, and its receipts against the header's results root.

Not checked, and said so in the report: the transactions, signatures and receipts of
pruned heights; re-execution (state, log and results roots recomputed); the
byte-for-byte comparison of the stored state, log and index rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger.block import Block, BlockHeader, compute_results_root
from ledger.block_prune import pruned_to
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.storage import KVStore
from ledger.validators import ValidatorSet
from node.audit import AuditReport, Finding, add_finding
from node.audit_links import Verify
from node.chain import ChainStore
from node.sigcheck import verify_signatures

Note = Callable[[int, str, str], None]
SIGNATURE_BATCH = 4000  # transactions verified per call


class _Walk:
    """The header chain from genesis, one height at a time."""

    def __init__(self, chain: ChainStore, note: Note) -> None:
        self.chain = chain
        self.note = note
        genesis = chain.genesis
        self.prev_hash = genesis.hash
        self.prev_time = genesis.genesis_time_ms
        self.next_set_hash = genesis.validators.hash  # what the next header must name
        self.prev_cert_hash: bytes | None = None

    def header(self, height: int, header: BlockHeader | None, why: str = "") -> bool:
        """Check ``header`` of ``height`` and its certificate; False if it is missing or
        does not decode (``why``)."""
        if header is None:
            self.note(height, "header", why or "missing (neither the block nor its kept header)")
            self.prev_hash, self.prev_cert_hash = b"", None
            return False
        problems = []
        if header.height != height or header.chain_id != self.chain.genesis.chain_id:
            problems.append("is not the header of this height of this chain")
        if self.prev_hash and header.prev_hash != self.prev_hash:
            problems.append("prev_hash does not link to the previous header (hash chain broken)")
        if header.time_ms <= self.prev_time:
            problems.append("time is not after the previous header's")
        if self.prev_cert_hash is not None and header.last_cert_hash != self.prev_cert_hash:
            problems.append("last_cert_hash is not the hash of the previous certificate")
        if header.validators_hash != self.next_set_hash:
            problems.append("names another validator set than the previous header certified")
        for problem in problems:
            self.note(height, "block header", problem)
        self._certificate(height, header)
        self.prev_hash, self.prev_time = header.hash, header.time_ms
        self.next_set_hash = header.next_validators_hash
        return True

    def _certificate(self, height: int, header: BlockHeader) -> None:
        record = f"certificate {height}"
        try:
            cert = self.chain.certificate(height)
        except LedgerError as exc:  # it does not decode
            self.note(height, record, str(exc))
            self.prev_cert_hash = None
            return
        self.prev_cert_hash = None if cert is None else cert.hash
        if cert is None:
            self.note(height, record, "missing")
            return
        try:
            voters: ValidatorSet = self.chain.validators_at(height)
        except LedgerError as exc:
            self.note(height, "validator set", str(exc))
            return
        if voters.hash != header.validators_hash:
            self.note(height, "validator set", "the stored set is not the one the header names")
            return
        try:
            cert.verify(voters, self.chain.genesis.chain_id, height=height, block_hash=header.hash)
        except LedgerError as exc:
            self.note(height, record, str(exc))


def audit_block_pruned(
    store: KVStore, genesis: Genesis, verify: Verify = verify_signatures
) -> AuditReport:
    """The audit of a block-pruned ``store``, read only (see the module docstring)."""
    started = time.perf_counter()
    chain = ChainStore(store, genesis)
    tip = chain.head().height
    oldest = min(pruned_to(store), tip + 1)
    report = AuditReport(genesis.chain_id, tip, oldest_block=oldest)

    def note(height: int, record: str, problem: str) -> None:
        add_finding(report, Finding(height, record, problem))

    walk = _Walk(chain, note)
    kept: list[Block] = []
    for height in range(1, tip + 1):
        block = _kept_block(chain, height, note) if height >= oldest else None
        if block is not None:
            walk.header(height, block.header)
        else:
            walk.header(height, *_stored_header(chain, height))
        if block is not None:
            _check_body(chain, block, note)
            kept.append(block)
        if sum(len(b.txs) for b in kept) >= SIGNATURE_BATCH or height == tip:
            report.txs += _signatures(genesis, kept, verify, note)
            kept = []
        report.linked = height
    report.not_checked.extend(_gaps(oldest, tip))
    report.findings.sort(key=lambda f: (f.height is None, f.height or 0))
    report.seconds = time.perf_counter() - started
    return report


def _stored_header(chain: ChainStore, height: int) -> tuple[BlockHeader | None, str]:
    """The header kept for ``height`` (a pruned block's), or None and why."""
    try:
        return chain.header(height), ""
    except LedgerError as exc:  # it does not decode
        return None, str(exc)


def _kept_block(chain: ChainStore, height: int, note: Note) -> Block | None:
    try:
        block = chain.block(height)
    except LedgerError as exc:
        note(height, "block", str(exc))
        return None
    if block is None:
        note(height, "block", "missing (at or above the oldest height this store keeps)")
    return block


def _check_body(chain: ChainStore, block: Block, note: Note) -> None:
    """The kept block's body and receipts against its (certified) header."""
    for check in (block.check_tx_root, block.check_evidence_root):
        try:
            check()
        except LedgerError as exc:
            note(block.height, "block", str(exc))
    try:
        receipts = chain.receipts(block.height)
    except LedgerError as exc:
        note(block.height, "receipts", str(exc))
        return
    if len(receipts) != len(block.txs):
        note(block.height, "receipts", f"{len(receipts)} stored for {len(block.txs)} transactions")
    elif compute_results_root(receipts) != block.header.results_root:
        note(block.height, "receipts", "do not make the header's results root")


def _signatures(genesis: Genesis, blocks: list[Block], verify: Verify, note: Note) -> int:
    items = [
        (b.height, i, tx.sender, tx.body, tx.signature)
        for b in blocks
        for i, tx in enumerate(b.txs)
    ]
    for pos in verify((genesis.chain_id, items)):
        height, index = items[pos][0], items[pos][1]
        note(height, f"transaction {index}", "bad signature")
    return len(items)


def _gaps(oldest: int, tip: int) -> list[str]:
    """The report's sentences on what this audit could not check."""
    return [
        f"blocks 1 to {oldest - 1}: this node prunes blocks and keeps their bodies and "
        f"receipts from height {oldest} on ([storage] block_keep_heights); their headers "
        "and certificates were checked from genesis (hash chain, more than 2/3 of each "
        "certified validator set), their transactions, signatures and receipts could not be",
        "re-execution: no block was re-executed (that needs every block from genesis), so "
        f"the state, log and results roots of heights 1 to {tip} were not recomputed; the "
        f"transactions of blocks {oldest} to {tip} were checked against their certified "
        "headers (tx and evidence roots, signatures, receipts against the results root)",
        "stored rows (state, log, indexes) were not compared byte for byte: there is no "
        "re-execution to compare them with. Audit an archive node for the whole chain",
    ]
