"""What a node answers, independent of HTTP: the API's handlers call these.

Every answer about a record comes with what a client needs to check it
without trusting this node: the header of the height it was read at, that
height's commit certificate, and a state or log proof against the header.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ledger import merkle
from ledger.block import Block, BlockHeader, Receipt
from ledger.block_prune import require_block
from ledger.errors import LedgerError
from ledger.log import MerkleLog
from ledger.merkle import ConsistencyProof, InclusionProof
from ledger.state import StateProof, StateTree
from ledger.state_prune import HeightGuard, require_state
from ledger.storage import KVStore
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.chain import ChainStore


class StateAt:
    """A :class:`~contracts.context.StateReader` over the state under one root."""

    def __init__(self, tree: StateTree, root: bytes) -> None:
        self.tree = tree
        self.root = root

    @classmethod
    def under(cls, store: KVStore, root: bytes) -> StateAt:
        return cls(StateTree(store, root), root)

    def get(self, key: bytes) -> bytes | None:
        return self.tree.get_at(self.root, key)


class NotFound(LedgerError):
    code = "not_found"


class NoHistoryBefore(LedgerError):
    """A height below the one this node's state starts at (it joined by state sync)."""

    code = "no_state_before"
    http_status = 410

    def __init__(self, height: int, base: int) -> None:
        super().__init__(
            f"this node has no state, blocks or receipts before height {base} (it joined by "
            f"state sync at {base}); height {height} is older: ask a node that keeps the "
            "whole chain"
        )
        self.base = base


@dataclass(frozen=True, slots=True)
class Certified:
    """A header and the certificate that committed it."""

    header: BlockHeader
    cert: CommitCertificate


@dataclass(frozen=True, slots=True)
class ReceiptAnswer:
    tx: Transaction
    receipt: Receipt
    block_proof: InclusionProof  # tx hash in header.tx_root
    results_proof: InclusionProof  # receipt hash in header.results_root
    log_proof: InclusionProof  # tx hash in header.log_root (log of every tx since genesis)
    certified: Certified


@dataclass(frozen=True, slots=True)
class BlockProofs:
    """What every receipt of one committed block is proven with, decoded once."""

    header: BlockHeader
    txs: tuple[Transaction, ...]
    receipts: list[Receipt]
    tx_tree: merkle.MerkleLevels  # over the block's tx hashes (its tx root)
    results_tree: merkle.MerkleLevels  # over its receipts' hashes (its results root)


PROOF_CACHE_HEIGHTS = 16
PROOF_CACHE_TXS = 8_000
"""Transactions the proof cache holds at most (decoded with their receipts and both
trees, about 2.5 KB each: 20 MB), so 16 full blocks cannot keep 80 MB alive."""


@dataclass(frozen=True, slots=True)
class StateAnswer:
    key: bytes
    value: bytes | None
    proof: StateProof
    certified: Certified


class Queries:
    """Read-only questions over a node's committed chain."""

    def __init__(self, chain: ChainStore) -> None:
        self.chain = chain
        # Committed blocks never change, so what proves their receipts is kept for the
        # last few heights asked about: a block is decoded once, not once per receipt.
        self._proofs: OrderedDict[int, BlockProofs] = OrderedDict()
        self._proof_txs = 0  # transactions in the cached blocks

    @property
    def cached_proof_txs(self) -> int:
        """Transactions in the blocks whose receipt proofs are cached."""
        return self._proof_txs

    def latest(self) -> Certified:
        head = self.chain.head()
        if head.height == 0:
            raise NotFound("no block has been committed yet")
        return self.certified(head.height)

    def certified(self, height: int) -> Certified:
        return self._certify(self.header(height))

    def header(self, height: int) -> BlockHeader:
        """The header of committed block ``height`` (kept when its body is pruned)."""
        header = self.chain.header(height)
        return self.block(height).header if header is None else header  # raises the right error

    def check_held(self, height: int) -> None:
        """Raise :class:`NoHistoryBefore` for a height before this node's state."""
        base = self.chain.base_height()
        if 0 < height < base:
            raise NoHistoryBefore(height, base)

    def _certify(self, header: BlockHeader) -> Certified:
        cert = self.chain.certificate(header.height)
        if cert is None:
            raise NotFound(f"no certificate for height {header.height}")
        return Certified(header, cert)

    def block(self, height: int, what: str | None = None) -> Block:
        """Committed block ``height``; :class:`BlockPruned` (``what`` names the record
        asked for) if this node has pruned its body, :class:`NotFound` if there is none."""
        block = self.chain.block(height)
        if block is None:
            require_block(self.chain.store, height, what)
            self.check_held(height)
            raise NotFound(f"no block at height {height} (head is {self.chain.head().height})")
        return block

    def receipt(self, tx_hash: bytes) -> ReceiptAnswer:
        location = self.chain.tx_location(tx_hash)
        if location is None:
            raise NotFound(f"transaction {tx_hash.hex()} is not committed")
        height, index = location
        what = f"transaction {tx_hash.hex()}, committed at height {height} (index {index})"
        proofs = self.block_proofs(height, what)
        if not index < len(proofs.receipts):
            raise NotFound(f"no receipt for {tx_hash.hex()}")
        header = proofs.header
        log = self.log()
        log_index = header.log_size - header.tx_count + index
        return ReceiptAnswer(
            proofs.txs[index],
            proofs.receipts[index],
            _inclusion(proofs.tx_tree, index),
            _inclusion(proofs.results_tree, index),
            log.prove_inclusion(log_index, header.log_size),
            self._certify(header),
        )

    def block_proofs(self, height: int, what: str | None = None) -> BlockProofs:
        """The decoded header, receipts and both trees of a committed block (cached);
        ``what``: the record asked for, named if the block has been pruned."""
        require_block(self.chain.store, height, what)  # pruned since it was cached, too
        cached = self._proofs.get(height)
        if cached is not None:
            self._proofs.move_to_end(height)
            return cached
        block = self.block(height, what)
        receipts = self.chain.receipts(height)
        proofs = BlockProofs(
            block.header,
            block.txs,
            receipts,
            merkle.MerkleLevels([merkle.leaf_hash(tx.hash) for tx in block.txs]),
            merkle.MerkleLevels([merkle.leaf_hash(r.hash) for r in receipts]),
        )
        self._proofs[height] = proofs
        self._proof_txs += len(proofs.txs)
        while len(self._proofs) > 1 and (
            len(self._proofs) > PROOF_CACHE_HEIGHTS or self._proof_txs > PROOF_CACHE_TXS
        ):
            self._proof_txs -= len(self._proofs.popitem(last=False)[1].txs)
        return proofs

    def state(self, key: bytes, height: int | None = None) -> StateAnswer:
        """A state value with its proof, at ``height`` (default: the latest)."""
        certified = self.latest() if height is None else self.certified(height)
        require_state(self.chain.store, certified.header.height)
        tree = StateTree(self.chain.store, certified.header.state_root)
        proof = tree.prove(key, certified.header.state_root)
        return StateAnswer(key, proof.value, proof, certified)

    def state_under(self, root: bytes) -> StateAt:
        """The state under ``root`` (e.g. a header's state root)."""
        return StateAt.under(self.chain.store, root)

    def tree_under(self, root: bytes, height: int | None = None) -> StateTree:
        """The state tree under ``root``, to read and prove keys at that root; with the
        ``height`` it is of, a read that pruning overtakes raises :class:`StatePruned`."""
        store = self.chain.store if height is None else HeightGuard(self.chain.store, height)
        return StateTree(store, root)

    def state_after(self, header: BlockHeader) -> StateAt:
        """The state as it stood right after ``header``'s block (:class:`StatePruned`
        if this node no longer keeps it)."""
        require_state(self.chain.store, header.height)
        return StateAt(self.tree_under(header.state_root, header.height), header.state_root)

    def tx_inclusion(self, tx_hash: bytes, log_size: int) -> InclusionProof | None:
        """Proof that committed transaction ``tx_hash`` is in the log of ``log_size`` leaves."""
        leaf = self.chain.tx_log_index(tx_hash)
        if leaf is None:
            return None
        return self.log().prove_inclusion(leaf, log_size)

    def log(self) -> MerkleLog:
        """The log of every committed transaction hash."""
        return MerkleLog(self.chain.store)

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        log = self.log()
        size = log.size() if new_size is None else new_size
        if not 0 <= old_size <= size <= log.size():
            raise NotFound(f"log sizes must satisfy 0 <= {old_size} <= {size} <= {log.size()}")
        return log.prove_consistency(old_size, size)

    def header_with_log_size(self, log_size: int) -> int | None:
        """Lowest height whose header has exactly ``log_size`` (checkpoints name one)."""
        lo, hi = 1, self.chain.head().height
        while lo <= hi:
            mid = (lo + hi) // 2
            size = self.header(mid).log_size
            if size < log_size:
                lo = mid + 1
            elif size > log_size or (mid > 1 and self.header(mid - 1).log_size == size):
                hi = mid - 1
            else:
                return mid
        return None


def _inclusion(tree: merkle.MerkleLevels, index: int) -> InclusionProof:
    return InclusionProof(index, tree.size, tuple(tree.inclusion_proof(index)))
