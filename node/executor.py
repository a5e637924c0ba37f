"""Block building, validation by re-execution, and commit.

The proposer executes its candidate transactions on an overlay of the store and
puts the resulting state, log and results roots in the header. Every validator
re-executes a proposed block the same way and accepts it only if it gets the
identical header; the executed overlay is kept (by block hash) so that commit
writes it without executing a third time. Pure with respect to time: the
caller passes ``now_ms``.

A block also commits equivocation evidence: the proposer offers the pending pieces
(``build_block(evidence=...)``) and keeps those that pass :meth:`Executor.check_evidence`;
a validator refuses (prevotes nil on) a block with any piece that does not pass it
(:class:`InvalidEvidence`), or whose ``evidence_root`` does not match.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.engine import execute_block
from contracts.validator_state import close_block, current_set, next_set, signer_rows
from ledger.block import (
    ZERO_HASH,
    Block,
    BlockHeader,
    Receipt,
    compute_results_root,
    compute_tx_root,
)
from ledger.block_prune import BlockPruneStep, prune_blocks_step
from ledger.errors import LedgerError, SignatureError
from ledger.evidence import (
    MAX_BLOCK_EVIDENCE,
    Evidence,
    EvidenceError,
    Offence,
    check_evidence_window,
    compute_evidence_root,
    describe_evidence,
)
from ledger.genesis import Genesis
from ledger.log import MerkleLog
from ledger.state import NodeCache, StateTree
from ledger.state_prune import (
    PRUNE_STEP_RECORDS,
    PruneStep,
    prune_step,
    record_retired,
    records_retired,
)
from ledger.state_retire import Retired
from ledger.storage import OverlayStore, WriteBatch, keys
from ledger.tx import Transaction
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from node.chain import ChainStore, Head, put_block_records, put_validator_change
from node.sigcache import SignatureCache

MAX_CLOCK_DRIFT_MS = 10_000
MAX_SPECULATED = 2  # announced bodies executed ahead and kept (one a round is taken)
AHEAD = "ahead"  # a proposal validated with the execution made ahead from its body
EXECUTED = "executed"  # a proposal executed when it came


class InvalidBlock(LedgerError):
    """A proposed block this node will not vote for, and why."""

    code = "invalid_block"


class InvalidEvidence(InvalidBlock):
    """A piece of a block's evidence that the block may not commit."""

    def __init__(self, height: int, index: int, evidence: Evidence, problem: str) -> None:
        super().__init__(
            f"block {height}: evidence {index} ({describe_evidence(evidence)}): {problem}"
        )
        self.index = index
        self.evidence = evidence
        self.problem = problem


@dataclass(slots=True)
class ExecutedBlock:
    block: Block
    receipts: list[Receipt]
    batch: WriteBatch  # everything commit must write except the certificate and head
    retired: int = 0  # state rows that left the tree with it (noted when the store prunes)


class Executor:
    """Builds and checks blocks on top of the chain's head."""

    def __init__(self, chain: ChainStore, sigs: SignatureCache) -> None:
        self.chain = chain
        self.genesis: Genesis = chain.genesis
        self.sigs = sigs
        self._executed: OrderedDict[bytes, ExecutedBlock] = OrderedDict()
        # Announced bodies executed ahead of their proposal (speculate), by the hash of
        # the block they make: used only after that proposal passed every other check.
        self._speculated: OrderedDict[bytes, ExecutedBlock] = OrderedDict()
        # Proposals validated (not certified blocks): how many took the execution made
        # ahead from their body (AHEAD) and how many were executed when they came
        # (EXECUTED): /v1/status consensus.validations.
        self.validations: Counter[str] = Counter()
        # Upper tree levels, kept across blocks (content-addressed: safe to share).
        self.node_cache = NodeCache()
        # Pruning ([storage] state_keep_heights, ledger/state_prune.py): 0 keeps every
        # height's state; blocks note the rows they retire whenever the store prunes.
        self.keep_heights = 0
        self.track_retired = records_retired(chain.store, 0)
        self.index_retired = False  # the offline audit's replay: records by row too
        self.last_prune: PruneStep | None = None
        # Block pruning ([storage] block_keep_heights, ledger/block_prune.py): 0 keeps
        # every block body and receipt.
        self.block_keep_heights = 0
        self.last_block_prune: BlockPruneStep | None = None

    def prune_state(self, keep_heights: int) -> None:
        """Keep the state of the last ``keep_heights`` heights only (0: every height)."""
        self.keep_heights = keep_heights
        self.track_retired = records_retired(self.chain.store, keep_heights)

    def prune_blocks(self, keep_heights: int) -> None:
        """Keep the block bodies and receipts of the last ``keep_heights`` heights only
        (0: every block); headers and certificates are kept for all."""
        self.block_keep_heights = keep_heights

    # --- proposer -----------------------------------------------------------------------

    def build_block(
        self,
        txs: Sequence[Transaction],
        now_ms: int,
        proposer: bytes,
        last_cert: CommitCertificate | None,
        evidence: Sequence[Evidence] = (),
    ) -> ExecutedBlock:
        """``evidence``: pending pieces on offer, oldest first; the block commits those
        that pass :meth:`check_evidence`, up to ``MAX_BLOCK_EVIDENCE``."""
        head = self.chain.head()
        time_ms = self.block_time_ms(now_ms)
        chosen = self.admissible_evidence(evidence, head.height + 1)
        executed = self._execute(head, tuple(txs), time_ms, proposer, last_cert, chosen)
        self._remember(executed)
        return executed

    def block_time_ms(self, now_ms: int) -> int:
        """The time of a block built on our head at ``now_ms``: after the head's."""
        return max(now_ms, self.chain.head().time_ms + 1)

    def speculate(
        self,
        txs: Sequence[Transaction],
        time_ms: int,
        proposer: bytes,
        last_cert: CommitCertificate | None,
    ) -> bytes | None:
        """Execute an announced block body (node/speculation.py) on our head, ahead of
        its proposal; return the hash of the block it makes (None: no block on our head
        could have this time). Nothing is checked here and nothing is trusted from it:
        :meth:`validate_block` checks the proposal as ever and takes only the execution,
        and only when the proposal's header is the one made here (the same hash: the
        same parent, transactions, time, certificate and therefore results).
        Transactions are named by hash, which does not cover their signatures, so the
        block's rows are written from the proposal's own block then, not from these."""
        head = self.chain.head()
        if time_ms <= head.time_ms:
            return None
        executed = self._execute(head, tuple(txs), time_ms, proposer, last_cert, records=False)
        block_hash = executed.block.hash
        self._speculated[block_hash] = executed
        while len(self._speculated) > MAX_SPECULATED:
            self._speculated.popitem(last=False)
        return block_hash

    def admissible_evidence(
        self, candidates: Sequence[Evidence], height: int
    ) -> tuple[Evidence, ...]:
        """The first ``MAX_BLOCK_EVIDENCE`` of ``candidates`` block ``height`` may commit."""
        chosen: list[Evidence] = []
        offences: set[Offence] = set()
        for evidence in candidates:
            if len(chosen) >= MAX_BLOCK_EVIDENCE:
                break
            try:
                self.check_evidence(evidence, height, offences)
            except EvidenceError:
                continue
            chosen.append(evidence)
        return tuple(chosen)

    def check_evidence(
        self, evidence: Evidence, height: int, offences: set[Offence], *, certified: bool = False
    ) -> None:
        """Raise :class:`EvidenceError` unless block ``height`` may commit ``evidence``:
        from a height in the window, an offence neither in ``offences`` (the block's pieces
        before it; this one is added) nor already committed, and verified against the
        validator set (both signatures, by a validator or that round's proposer). The
        cheap checks come first.

        A node that joined by state sync at H has no offence index before H, so it cannot
        tell whether an offence of a height below H was committed then: unless the block
        is ``certified`` (the validators have judged it), it does not take such a piece —
        as a proposer it leaves it out, as a validator it prevotes nil — rather than vote
        for a block that repeats it, which every node holding the whole history refuses."""
        check_evidence_window(evidence, height)
        if evidence.offence in offences:
            raise EvidenceError("the block repeats this offence")
        location = self.chain.offence_location(evidence)
        if location is not None:
            raise EvidenceError(f"this offence was already committed at height {location[0]}")
        if not certified and evidence.height < (base := self.chain.base_height()):
            raise EvidenceError(
                f"this node joined by state sync at height {base} and cannot check that an "
                f"offence of height {evidence.height} was not committed before it"
            )
        evidence.verify(self.genesis.chain_id, self.chain.validators_at(evidence.height))
        offences.add(evidence.offence)

    # --- validators ---------------------------------------------------------------------

    def validate_block(
        self,
        block: Block,
        now_ms: int | None,
        *,
        certified: bool = False,
        last_cert_checked: bool = False,
    ) -> ExecutedBlock:
        """Re-execute ``block``; raise :class:`InvalidBlock` on any difference.

        ``now_ms`` bounds how far in the future the block time may be; ``None``
        skips that check. ``certified`` is for catch-up: the caller has checked a
        commit certificate for this block, so >2/3 of the validators already
        verified its transaction signatures and we do not pay for them again;
        everything else (links, roots, re-execution) is still checked.
        ``last_cert_checked``: the caller verified the very certificate this block
        carries for its parent (catch-up, which checked it as that block's own).
        """
        cached = self._executed.get(block.hash)
        if cached is not None:
            return cached
        head = self.chain.head()
        h = block.header
        self._check_header_links(h, head, now_ms)
        if not last_cert_checked:
            self._check_last_cert(block)
        try:
            block.check_tx_root()
        except LedgerError as exc:
            raise InvalidBlock(str(exc)) from None
        self._check_evidence(block, certified=certified)
        self._check_transactions(block, verify_signatures=not certified)
        executed = self._speculated.pop(h.hash, None)  # the same header: the same execution
        if not certified:
            self.validations[EXECUTED if executed is None else AHEAD] += 1
        if executed is not None:
            put_block_records(executed.batch, block, executed.receipts)
        else:
            executed = self._execute(
                head,
                block.txs,
                h.time_ms,
                h.proposer,
                block.last_cert,
                block.evidence,
                tx_root=h.tx_root,
            )
        mine = executed.block.header
        if mine.hash != h.hash:
            raise InvalidBlock(f"block {h.height}: re-execution differs: {_header_diff(mine, h)}")
        executed = ExecutedBlock(block, executed.receipts, executed.batch, executed.retired)
        self._remember(executed)
        return executed

    def executed(self, block_hash: bytes) -> ExecutedBlock | None:
        return self._executed.get(block_hash)

    def commit(
        self,
        executed: ExecutedBlock,
        cert: CommitCertificate,
        *,
        sync: bool = True,
        behind: bool = False,
    ) -> None:
        """Write the block and everything it changed in one atomic batch, synced unless
        ``sync=False`` (catch-up, within a batch of certified blocks: node/sync.py);
        ``behind``: on the store's writer thread (:meth:`ChainStore.commit`)."""
        self.chain.commit(executed.batch, executed.block, cert, sync=sync, behind=behind)
        self._executed.clear()
        self._speculated.clear()
        if self.keep_heights:
            # Twice what this block retired, so that a step keeps up with the blocks (and
            # works a backlog off) at a cost in proportion to the block's own work.
            head, limit = self.chain.head(), max(PRUNE_STEP_RECORDS, 2 * executed.retired)
            self.last_prune = prune_step(
                self.chain.store, head.height, self.keep_heights, limit=limit
            )
        if self.block_keep_heights:
            # One bounded step per block: a backlog is worked off over the next blocks.
            self.last_block_prune = prune_blocks_step(
                self.chain.store, self.chain.head().height, self.block_keep_heights
            )

    # --- internals ----------------------------------------------------------------------

    def _check_header_links(self, h: BlockHeader, head: Head, now_ms: int | None) -> None:
        if h.chain_id != self.genesis.chain_id:
            raise InvalidBlock(f"block is for chain {h.chain_id!r}")
        if h.height != head.height + 1:
            raise InvalidBlock(f"block height {h.height}, expected {head.height + 1}")
        if h.prev_hash != head.block_hash:
            raise InvalidBlock(f"block {h.height} does not extend our head")
        # A block re-proposed in a later round (paper lines 28-33) keeps its first
        # proposer, so the header's proposer need only be a validator of its height.
        validators = self.chain.validators_at(h.height)
        if h.proposer not in validators:
            raise InvalidBlock(f"block {h.height} names a proposer that is not a validator")
        if h.time_ms <= head.time_ms:
            raise InvalidBlock(f"block {h.height} time is not after the previous block's")
        if now_ms is not None and h.time_ms > now_ms + MAX_CLOCK_DRIFT_MS:
            raise InvalidBlock(f"block {h.height} time is {h.time_ms - now_ms} ms in the future")
        if h.validators_hash != validators.hash:
            raise InvalidBlock(f"block {h.height} names another validator set")
        if h.next_validators_hash != self.chain.validators_at(h.height + 1).hash:
            raise InvalidBlock(f"block {h.height} names another next validator set")

    def _check_last_cert(self, block: Block) -> None:
        if block.last_cert is None:
            return
        try:
            block.last_cert.verify(
                self.chain.validators_at(block.height - 1),
                self.genesis.chain_id,
                height=block.height - 1,
                block_hash=block.header.prev_hash,
            )
        except LedgerError as exc:
            raise InvalidBlock(f"block {block.height}: {exc}") from None

    def _check_evidence(self, block: Block, *, certified: bool) -> None:
        """Every piece (named when it fails), then the root over them. Signatures are
        checked even for a certified block: pieces are few and this is the audit's check."""
        offences: set[Offence] = set()
        for index, evidence in enumerate(block.evidence):
            try:
                self.check_evidence(evidence, block.height, offences, certified=certified)
            except EvidenceError as exc:
                raise InvalidEvidence(block.height, index, evidence, str(exc)) from None
        try:
            block.check_evidence_root()
        except LedgerError as exc:
            raise InvalidBlock(str(exc)) from None

    def _check_transactions(self, block: Block, *, verify_signatures: bool) -> None:
        seen: set[bytes] = set()
        max_txs = self.genesis.consensus.max_block_txs
        if len(block.txs) > max_txs:
            raise InvalidBlock(f"block {block.height} has over {max_txs} transactions")
        for tx in block.txs:
            if tx.hash in seen or self.chain.tx_location(tx.hash) is not None:
                raise InvalidBlock(f"block {block.height} repeats transaction {tx.hash.hex()}")
            seen.add(tx.hash)
            if not verify_signatures:
                continue
            try:
                self.sigs.verify(tx)
            except SignatureError as exc:
                raise InvalidBlock(f"block {block.height}: {exc}") from None

    def _execute(
        self,
        head: Head,
        txs: tuple[Transaction, ...],
        time_ms: int,
        proposer: bytes,
        last_cert: CommitCertificate | None,
        evidence: tuple[Evidence, ...] = (),
        *,
        tx_root: bytes | None = None,
        records: bool = True,
    ) -> ExecutedBlock:
        """Execute ``txs`` on ``head``; ``tx_root``: their root, when already checked;
        ``records``: with the block's own rows (block, receipts, indexes) in the batch."""
        height = head.height + 1
        overlay = OverlayStore(self.chain.store)
        state = self.state_tree(overlay, head.state_root)
        signed = signer_rows(last_cert)
        reader = _Layered(state, signed)
        validators, upcoming = current_set(state, self.genesis), next_set(state, self.genesis)
        outcome = execute_block(reader, overlay, self.genesis, height, time_ms, txs)
        changes = signed | outcome.state_changes
        changed = close_block(state, self.genesis, changes)
        retired: list[Retired] | None = [] if self.track_retired else None
        state_root = state.apply(
            dict(sorted(changes.items())), overlay.batch, retired, height=height
        )
        if retired:
            record_retired(overlay.batch, height, retired, by_row=self.index_retired)
        if changed is not None:
            put_validator_change(overlay.batch, height + 2, changed)
        for key, value in outcome.index_changes.items():
            assert key.startswith(keys.INDEX), "contracts may only write index rows"
            if value is None:
                overlay.delete(key)
            else:
                overlay.put(key, value)
        log = MerkleLog(overlay)
        log_root = log.append([tx.hash for tx in txs])
        header = BlockHeader(
            chain_id=self.genesis.chain_id,
            height=height,
            time_ms=time_ms,
            prev_hash=head.block_hash,
            proposer=proposer,
            tx_count=len(txs),
            tx_root=compute_tx_root(txs) if tx_root is None else tx_root,
            log_size=log.size(),
            log_root=log_root,
            state_root=state_root,
            results_root=compute_results_root(outcome.receipts),
            validators_hash=validators.hash,
            next_validators_hash=upcoming.hash,
            last_cert_hash=ZERO_HASH if last_cert is None else last_cert.hash,
            evidence_root=compute_evidence_root(evidence),
        )
        block = Block(header, txs, last_cert, evidence)
        if records:
            put_block_records(overlay.batch, block, outcome.receipts)
        return ExecutedBlock(block, outcome.receipts, overlay.take(), len(retired or ()))

    def state_tree(self, store: OverlayStore, root: bytes) -> StateTree:
        """The state a block executes on (the offline audit's segments read it differently)."""
        return StateTree(store, root, cache=self.node_cache)

    def validators(self, height: int) -> ValidatorSet:
        """The set that votes on block ``height`` (up to the head + 2)."""
        return self.chain.validators_at(height)

    def _remember(self, executed: ExecutedBlock) -> None:
        self._executed[executed.block.hash] = executed
        while len(self._executed) > 8:
            self._executed.popitem(last=False)


class _Layered:
    """``base`` with ``rows`` on top: the state a block's transactions read (its signed
    heights are written before they run)."""

    def __init__(self, base: StateTree, rows: dict[bytes, bytes]) -> None:
        self.base = base
        self.rows = rows

    def get(self, key: bytes) -> bytes | None:
        raw = self.rows.get(key)
        return raw if raw is not None else self.base.get(key)


def _header_diff(mine: BlockHeader, theirs: BlockHeader) -> str:
    names = [
        n
        for n in (
            "state_root",
            "log_root",
            "log_size",
            "results_root",
            "tx_root",
            "evidence_root",
            "validators_hash",
            "next_validators_hash",
        )
        if getattr(mine, n) != getattr(theirs, n)
    ]
    return ", ".join(f"{n} differs" for n in names) or "header fields differ"
