"""What a node answers, independent of HTTP: the API's handlers call these.

Every answer about a record comes with what a client needs to check it
without trusting this node: the header of the height it was read at, that
height's commit certificate, and a state or log proof against the header.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle
from ledger.block import Block, BlockHeader, Receipt
from ledger.errors import LedgerError
from ledger.log import MerkleLog
from ledger.merkle import ConsistencyProof, InclusionProof
from ledger.state import StateProof, StateTree
from ledger.votes import CommitCertificate
from node.chain import ChainStore


class NotFound(LedgerError):
    code = "not_found"


@dataclass(frozen=True, slots=True)
class Certified:
    """A header and the certificate that committed it."""

    header: BlockHeader
    cert: CommitCertificate


@dataclass(frozen=True, slots=True)
class ReceiptAnswer:
    receipt: Receipt
    block_proof: InclusionProof  # tx hash in header.tx_root
    log_proof: InclusionProof  # tx hash in header.log_root (log of every tx since genesis)
    certified: Certified


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

    def latest(self) -> Certified:
        head = self.chain.head()
        if head.height == 0:
            raise NotFound("no block has been committed yet")
        return self.certified(head.height)

    def certified(self, height: int) -> Certified:
        block = self.block(height)
        cert = self.chain.certificate(height)
        if cert is None:
            raise NotFound(f"no certificate for height {height}")
        return Certified(block.header, cert)

    def block(self, height: int) -> Block:
        block = self.chain.block(height)
        if block is None:
            raise NotFound(f"no block at height {height} (head is {self.chain.head().height})")
        return block

    def receipt(self, tx_hash: bytes) -> ReceiptAnswer:
        location = self.chain.tx_location(tx_hash)
        if location is None:
            raise NotFound(f"transaction {tx_hash.hex()} is not committed")
        height, index = location
        block = self.block(height)
        receipt = self.chain.receipt(height, index)
        if receipt is None:
            raise NotFound(f"no receipt for {tx_hash.hex()}")
        hashes = [tx.hash for tx in block.txs]
        block_proof = InclusionProof(
            index, len(hashes), tuple(merkle.inclusion_proof(hashes, index))
        )
        log = MerkleLog(self.chain.store)
        log_index = block.header.log_size - block.header.tx_count + index
        log_proof = log.prove_inclusion(log_index, block.header.log_size)
        return ReceiptAnswer(receipt, block_proof, log_proof, self.certified(height))

    def state(self, key: bytes, height: int | None = None) -> StateAnswer:
        """A state value with its proof, at ``height`` (default: the latest)."""
        certified = self.latest() if height is None else self.certified(height)
        tree = StateTree(self.chain.store, certified.header.state_root)
        proof = tree.prove(key, certified.header.state_root)
        return StateAnswer(key, proof.value, proof, certified)

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        log = MerkleLog(self.chain.store)
        size = log.size() if new_size is None else new_size
        if not 0 <= old_size <= size <= log.size():
            raise NotFound(f"log sizes must satisfy 0 <= {old_size} <= {size} <= {log.size()}")
        return log.prove_consistency(old_size, size)

    def header_with_log_size(self, log_size: int) -> int | None:
        """Lowest height whose header has exactly ``log_size`` (checkpoints name one)."""
        lo, hi = 1, self.chain.head().height
        while lo <= hi:
            mid = (lo + hi) // 2
            size = self.block(mid).header.log_size
            if size < log_size:
                lo = mid + 1
            elif size > log_size or (mid > 1 and self.block(mid - 1).header.log_size == size):
                hi = mid - 1
            else:
                return mid
        return None
