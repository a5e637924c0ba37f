"""What the audit can still check of the blocks after one that does not check out.

The replay (:mod:`node.audit`) re-executes block h on the state it computed for h − 1.
Once a block does not check out — it does not decode, does not link, its certificate or
a signature does not verify, or its re-execution differs from its header — the state
after it is unknown: executing the later blocks on our state would check them against a
state the chain never had (or had for reasons we cannot see), and executing them on the
stored state would trust rows the audit has just shown it cannot trust. So re-execution
stops there, and the report says so.

What does not depend on state can still be checked, and is, for every later block:

* it decodes canonically, is the block of its height, names the genesis chain id;
* its ``prev_hash`` is the hash of the stored block before it (the hash chain), and its
  time is after that block's;
* the certificate it carries for its parent (and the tip's, from the source) carries more
  than 2/3 of the voting power of the set in force, every signature valid, and its
  proposer is in that set;
* every transaction signature, the tx root and the evidence root.

The validator set in force is known only as far as the replay reached (the head's set
and the next one, written two heights ahead). A later block that names another set (a
change decided by a transaction the audit could not re-execute) cannot have its
certificate checked: that is said plainly, from that height on, rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Block, BlockHeader
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.tx import Transaction
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from node.sigcheck import verify_signatures


class Note(Protocol):
    """Records a finding: the height, the record, the problem (and the transaction)."""

    def __call__(
        self, height: int, record: str, problem: str, *, tx: tuple[int, Transaction] | None = None
    ) -> None: ...


SignatureJob = tuple[str, list[tuple[int, int, bytes, bytes, bytes]]]
Verify = Callable[[SignatureJob], list[int]]


@dataclass(slots=True)
class LinkCheck:
    """The state-free checks of the blocks after ``first_bad`` (see the module docstring)."""

    genesis: Genesis
    first_bad: int
    known_sets: dict[bytes, ValidatorSet]  # by hash: the sets the replay established
    note: Note
    prev: BlockHeader | None = None  # the stored header before the next block, if it decoded
    checked_to: int = 0  # the last height whose links were checked
    certs_unchecked_from: int | None = None
    gaps: list[str] = field(default_factory=list)
    _unlinked: list[int] = field(default_factory=list)

    def block(self, height: int, block: Block | None, why: str | None) -> None:
        """Check one block (``None``: it is missing or does not decode, for ``why``)."""
        if block is None:
            if height > self.first_bad:
                self.note(height, "block", why or "missing")
            self.prev = None
            self._unlinked.append(height + 1)
            self.checked_to = height
            return
        if height > self.first_bad:
            self._header(block)
            self._certificate(height - 1, block.last_cert)
        self.prev = block.header
        self.checked_to = height

    def _header(self, block: Block) -> None:
        h, prev = block.header, self.prev
        problems = []
        if prev is not None and h.prev_hash != prev.hash:
            problems.append("prev_hash does not link to the previous block (hash chain broken)")
        if prev is not None and h.time_ms <= prev.time_ms:
            problems.append("time is not after the previous block's")
        if h.chain_id != self.genesis.chain_id:
            problems.append("chain id differs from the genesis")
        for check in (block.check_tx_root, block.check_evidence_root):
            try:
                check()
            except LedgerError as exc:
                problems.append(str(exc).removeprefix(f"block {h.height}: "))
        known = self.known_sets.get(h.validators_hash)
        if known is not None and h.proposer not in known:
            problems.append("the proposer is not a validator of this height")
        for problem in problems:
            self.note(h.height, "block header", problem)

    def _certificate(self, height: int, cert: CommitCertificate | None) -> None:
        """``cert`` commits block ``height``, whose stored header is ``prev`` (a certificate
        for another hash than the stored block's does not vouch for the stored block)."""
        if cert is None or height < 1 or self.certs_unchecked_from is not None:
            return
        if self.prev is None or self.prev.height != height:
            self.gaps.append(
                f"the certificate of block {height}: the block is missing or does not decode, "
                "so the validator set that signed it is not known"
            )
            return
        voters = self.known_sets.get(self.prev.validators_hash)
        if voters is None:
            self.certs_unchecked_from = height
            self.gaps.append(
                f"certificates from height {height} on not checked: block {height} names a "
                "validator set the audit could not establish (it would have changed in "
                "the part of the chain that was not re-executed)"
            )
            return
        try:
            cert.verify(voters, self.genesis.chain_id, height=height, block_hash=self.prev.hash)
        except LedgerError as exc:
            self.note(height, f"certificate {height}", str(exc))

    def tip(self, tip: int, raw: bytes | None) -> None:
        """The tip's certificate, which no block carries yet (from the store or the API)."""
        if self.prev is None or self.prev.height != tip or tip <= self.first_bad:
            return
        record = f"certificate {tip} (the tip's)"
        if raw is None:
            self.note(tip, record, "missing")
            return
        try:
            cert = CommitCertificate.decode(raw)
        except LedgerError as exc:
            self.note(tip, record, str(exc))
            return
        self._certificate(tip, cert)

    def signatures(self, blocks: list[Block], verify: Verify = verify_signatures) -> None:
        """Every transaction signature of ``blocks`` (all bad ones named)."""
        items = [
            (b.height, i, tx.sender, tx.body, tx.signature)
            for b in blocks
            if b.height > self.first_bad
            for i, tx in enumerate(b.txs)
        ]
        if not items:
            return
        for pos in verify((self.genesis.chain_id, items)):
            height, index = items[pos][0], items[pos][1]
            block = next(b for b in blocks if b.height == height)
            tx = block.txs[index]
            self.note(
                height, f"transaction {index} ({tx.hash.hex()})", "bad signature", tx=(index, tx)
            )

    def summary(self, tip: int) -> list[str]:
        """What could not be checked, in plain words, for the report."""
        gaps = [
            f"state after height {self.first_bad - 1} not checked: the replay stops at block "
            f"{self.first_bad}, which does not check out, so the state the later blocks ran "
            "on cannot be derived; blocks "
            f"{self.first_bad + 1} to {tip} were checked for hash links, certificates, "
            "signatures and their tx and evidence roots only, not re-executed (their state, "
            "log and results roots, receipts and the validity of their evidence are unchecked)"
            if self.first_bad < tip
            else f"state after height {self.first_bad - 1} not checked: block "
            f"{self.first_bad} does not check out"
        ]
        gaps += [
            f"the link from block {h - 1} to block {h}: block {h - 1} is missing or does not decode"
            for h in self._unlinked
            if h <= tip
        ]
        return gaps + self.gaps
