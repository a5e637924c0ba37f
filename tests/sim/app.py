"""The simulated execution layer: blocks, their hashes, and honest validation.

A :class:`SimBlock` stands in for a real block. Like a real header it names the
previous block and the hash of the certificate that committed it, so every
commit certificate the core produces is carried by (and checked through) the
next block. Validation — the paper's valid(v) — is what an honest node would do:
the block is known, well-formed (``valid``), at the right height, on top of the
node's own last committed block, and the certificate it carries verifies.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from ledger.votes import CommitCertificate
from tests.sim.valsets import Schedule

ZERO = bytes(32)
Chain = list[tuple[bytes, CommitCertificate]]  # index h-1: (block hash, its certificate)


@dataclass(frozen=True, slots=True)
class SimBlock:
    height: int
    round: int
    proposer: bytes
    prev_hash: bytes
    prev_cert_hash: bytes
    variant: int = 0  # equivocating proposers build variants of their block
    valid: bool = True  # a byzantine proposer may build an invalid one
    txs: frozenset[int] = frozenset()  # the transactions it carries (tests/sim/idle.py)
    hash: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        data = struct.pack(">QIi?", self.height, self.round, self.variant, self.valid)
        data += self.proposer + self.prev_hash + self.prev_cert_hash
        if self.txs:  # blocks without transactions hash as they always did
            data += b"".join(struct.pack(">Q", tx) for tx in sorted(self.txs))
        object.__setattr__(self, "hash", hashlib.sha256(data).digest())


class BlockStore:
    """Every block and certificate that exists anywhere in the simulated world."""

    def __init__(self, valsets: Schedule, chain_id: str) -> None:
        self.valsets = valsets
        self.chain_id = chain_id
        self.blocks: dict[bytes, SimBlock] = {}
        self.by_height: dict[int, list[bytes]] = {}
        self.certs: dict[bytes, CommitCertificate] = {}
        self.proposed: set[tuple[int, bytes]] = set()  # (height, hash) sent in a proposal
        self._cert_ok: dict[tuple[bytes, int, bytes], bool] = {}

    def build(
        self,
        height: int,
        round_: int,
        proposer: bytes,
        chain: Chain,
        *,
        variant: int = 0,
        valid: bool = True,
        txs: frozenset[int] = frozenset(),
    ) -> SimBlock:
        if height > 1:
            prev_hash, prev_cert = chain[height - 2]
            self.certs[prev_cert.hash] = prev_cert
            prev_cert_hash = prev_cert.hash
        else:
            prev_hash = prev_cert_hash = ZERO
        block = SimBlock(height, round_, proposer, prev_hash, prev_cert_hash, variant, valid, txs)
        if block.hash not in self.blocks:
            self.blocks[block.hash] = block
            self.by_height.setdefault(height, []).append(block.hash)
        return block

    def cert_ok(self, cert: CommitCertificate, height: int, block_hash: bytes) -> bool:
        """``CommitCertificate.verify`` against the set in force at ``height``, cached."""
        key = (cert.hash, height, block_hash)
        ok = self._cert_ok.get(key)
        if ok is None:
            try:
                validators = self.valsets.at(height)
                cert.verify(validators, self.chain_id, height=height, block_hash=block_hash)
                ok = True
            except Exception:
                ok = False
            self._cert_ok[key] = ok
        return ok

    def check(self, block_hash: bytes, height: int, chain: Chain) -> bool:
        """valid(v) for a node whose committed chain is ``chain``."""
        block = self.blocks.get(block_hash)
        if block is None or not block.valid or block.height != height:
            return False
        if height == 1:
            return block.prev_hash == ZERO and block.prev_cert_hash == ZERO
        if len(chain) < height - 1:
            return False
        prev_hash = chain[height - 2][0]
        if block.prev_hash != prev_hash:
            return False
        cert = self.certs.get(block.prev_cert_hash)
        return cert is not None and self.cert_ok(cert, height - 1, prev_hash)
