"""A block answer as a light client checks it, with the transactions the node redacted.

A node shows a reader only the transactions the read rules allow and replaces
the others by ``{"redacted": true, "hash", "kind"}``
(docs/api.md, "Who can see what"). The header's tx root is built over the
transaction hashes, so the block is checked the same either way: every shown
transaction is hashed here (a node cannot show one and prove another), and the
root over all hashes must be the header's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle
from ledger.block import BlockHeader, evidence_list_from_obj
from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.evidence import Evidence, compute_evidence_root
from ledger.genesis import Genesis
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader, check_certificate


class BlockAnswerError(LedgerError):
    code = "malformed_block"


@dataclass(frozen=True, slots=True)
class BlockEntry:
    hash: bytes
    kind: str
    tx: Transaction | None  # None: redacted for this reader


@dataclass(frozen=True, slots=True)
class BlockView:
    header: BlockHeader
    cert: CommitCertificate
    entries: tuple[BlockEntry, ...]
    evidence: tuple[Evidence, ...]  # public: votes and proposals only, never redacted

    @property
    def redacted(self) -> int:
        return sum(1 for e in self.entries if e.tx is None)

    def check_tx_root(self) -> None:
        if len(self.entries) != self.header.tx_count:
            raise BlockAnswerError(
                f"block {self.header.height} holds {len(self.entries)} transactions, "
                f"its header says {self.header.tx_count}"
            )
        if merkle.root_of([e.hash for e in self.entries]) != self.header.tx_root:
            raise BlockAnswerError(
                f"block {self.header.height}: tx_root does not match its transactions"
            )

    def check_evidence_root(self) -> None:
        if compute_evidence_root(self.evidence) != self.header.evidence_root:
            raise BlockAnswerError(
                f"block {self.header.height}: evidence_root does not match its "
                f"{len(self.evidence)} pieces of evidence"
            )


def parse_block_answer(answer: dict[str, Value]) -> BlockView:
    """The header, certificate and transaction entries of a ``/v1/blocks/{h}`` answer."""
    try:
        block = answer["block"]
        if not isinstance(block, dict) or not isinstance(block.get("txs"), list):
            raise BlockAnswerError("the answer has no block with a list of transactions")
        header = BlockHeader.from_obj(block["header"])
        cert = CommitCertificate.from_obj(answer["certificate"])
        entries = tuple(_entry(item) for item in block["txs"])
        evidence = evidence_list_from_obj(block["evidence"])
    except (LedgerError, KeyError, TypeError) as exc:
        raise BlockAnswerError(f"the node sent a malformed block: {exc}") from None
    return BlockView(header, cert, entries, evidence)


def _entry(item: Value) -> BlockEntry:
    if isinstance(item, dict) and item.get("redacted") is True:
        h, kind = item["hash"], item["kind"]
        if not (isinstance(h, bytes) and len(h) == 32 and isinstance(kind, str)):
            raise BlockAnswerError(f"a redacted transaction entry is malformed: {item!r:.120}")
        return BlockEntry(h, kind, None)
    tx = Transaction.from_obj(item)
    return BlockEntry(tx.hash, tx.kind, tx)


def read_block(answer: dict[str, Value]) -> BlockView:
    """:func:`parse_block_answer`, a malformed block failing as a :class:`VerificationError`."""
    try:
        return parse_block_answer(answer)
    except LedgerError as exc:
        raise VerificationError(str(exc)) from None


def verify_block(view: BlockView, genesis: Genesis) -> CertifiedHeader:
    """The block's certificate against genesis; its transactions and evidence match its roots."""
    certified = check_certificate(view.header, view.cert, genesis)
    try:
        view.check_tx_root()
        view.check_evidence_root()
    except LedgerError as exc:
        raise VerificationError(str(exc)) from None
    return certified
