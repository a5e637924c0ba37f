"""What an audit finds and reports: :class:`Finding`, :class:`AuditReport`, and the
exception a check raises to stop at a finding (:class:`AuditFailure`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import LedgerError
from ledger.tx import Transaction

MAX_FINDINGS = 50


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not check out."""

    height: int | None
    record: str
    problem: str
    # What the engine knows cheaply, where it knows it (the report shows them):
    tx_index: int | None = None  # a bad signature: the transaction's place in the block
    tx_hash: bytes | None = None
    tx_kind: str | None = None
    key: bytes | None = None  # a stored row that differs: its storage key
    stored: bytes | None = None  # ... the stored value, and the re-executed one
    expected: bytes | None = None

    def __str__(self) -> str:
        where = "" if self.height is None else f"height {self.height}: "
        if self.height == 0:
            where = "genesis state: "
        return f"{where}{self.record}: {self.problem}"


GENESIS_RECORD = "genesis"


def bad_signature(height: int, index: int, tx: Transaction) -> Finding:
    """A transaction whose signature does not verify, with what the report shows of it."""
    return Finding(
        height,
        f"transaction {index} ({tx.hash.hex()})",
        "bad signature",
        tx_index=index,
        tx_hash=tx.hash,
        tx_kind=tx.kind,
    )


def genesis_mismatch(theirs: bytes, ours: bytes) -> Finding:
    """Block 1 follows another genesis than the auditor's file: another chain, not tampering."""
    return Finding(
        1,
        GENESIS_RECORD,
        f"genesis mismatch: this chain's genesis is {theirs.hex()}, yours is {ours.hex()} "
        "(block 1 follows another genesis): audit it with that chain's genesis file",
    )


@dataclass(slots=True)
class AuditReport:
    chain_id: str
    tip: int
    heights: int = 0
    txs: int = 0
    seconds: float = 0.0
    rows_compared: int = 0
    findings: list[Finding] = field(default_factory=list)
    more_findings: int = 0
    segments: int = 0  # blocks re-executed in this many parallel segments (0: in one replay)
    evidence: int = 0  # pieces of committed equivocation evidence checked
    linked: int = 0  # blocks whose links and certificates were checked (past a bad block too)
    not_checked: list[str] = field(default_factory=list)  # plain sentences, for the report
    streamed: bool = False  # the re-executed rows went to a scratch store on disk
    tree_beside: bool = False  # ... with the state tree in a process of its own
    oldest_state: int = 0  # a pruned store's claim: it keeps state from this height on
    oldest_block: int = 0  # a block-pruned store's: it keeps block bodies from here on

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def genesis_mismatch(self) -> Finding | None:
        """The finding that the chain follows another genesis, if that is what was found."""
        return next((f for f in self.findings if f.record == GENESIS_RECORD), None)

    @property
    def tx_rate(self) -> float:
        return self.txs / self.seconds if self.seconds > 0 else 0.0


class AuditFailure(LedgerError):
    code = "audit_failed"

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


def add_finding(report: AuditReport, finding: Finding) -> None:
    """A finding, or only a count once the report lists :data:`MAX_FINDINGS`."""
    if len(report.findings) >= MAX_FINDINGS:
        report.more_findings += 1
    else:
        report.findings.append(finding)
