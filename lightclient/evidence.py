"""Committed equivocation evidence, checked page by page against certified headers.

A node's ``/v1/evidence`` answer lists committed evidence by block, each block with
its header and commit certificate, then its own pending pool. Nothing it says is
taken on trust (:func:`verify_evidence_page`): every block's certificate must carry
>2/3 of the genesis validators' power for its header, the pieces listed for a block
must be exactly those under the header's ``evidence_root`` (none forged, hidden or
added), and every piece is re-verified here: both signatures, by a genesis validator
(the round's proposer for proposals), two different messages for one height, round
and step, from a height the block may commit, and no offence twice. Pending pieces
(not committed yet) are verified the same way and kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.evidence import (
    Evidence,
    Offence,
    check_evidence_window,
    compute_evidence_root,
    evidence_from_obj,
    evidence_summary,
)
from ledger.genesis import Genesis
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.validator_history import set_at


@dataclass(frozen=True, slots=True)
class CommittedPiece:
    height: int  # of the block that commits it
    index: int
    evidence: Evidence
    certified: CertifiedHeader


@dataclass(slots=True)
class EvidenceView:
    committed: list[CommittedPiece] = field(default_factory=list)
    pending: list[Evidence] = field(default_factory=list)
    offences: set[Offence] = field(default_factory=set)
    last_height: int = 0


def _piece(item: Value, genesis: Genesis, what: str) -> Evidence:
    """The evidence an item carries, re-verified; its summary fields must match it."""
    if not isinstance(item, dict):
        raise VerificationError(f"{what} is malformed")
    try:
        evidence = evidence_from_obj(item.get("evidence"))
    except LedgerError as exc:
        raise VerificationError(f"{what} is not evidence of equivocation: {exc}") from None
    for name, value in evidence_summary(evidence).items():
        if item.get(name) != value:
            raise VerificationError(f"{what}: its {name} differs from the evidence it carries")
    try:
        evidence.verify(genesis.chain_id, set_at(genesis, evidence.height))
    except LedgerError as exc:
        raise VerificationError(f"{what} does not verify (forged evidence): {exc}") from None
    return evidence


def _certified_blocks(
    blocks: list[Value], genesis: Genesis, view: EvidenceView
) -> dict[int, CertifiedHeader]:
    """The page's blocks by height, each certified, after the view's last and in order."""
    certified: dict[int, CertifiedHeader] = {}
    for entry in blocks:
        if not isinstance(entry, dict):
            raise VerificationError("the evidence answer is malformed")
        got = verify_certified(entry, genesis)
        if got.height <= view.last_height or got.height in certified:
            raise VerificationError(f"block {got.height} is listed twice or out of order")
        certified[got.height] = got
    return certified


def _committed_piece(
    item: Value,
    n: int,
    genesis: Genesis,
    certified: dict[int, CertifiedHeader],
    by_height: dict[int, list[Evidence]],
    view: EvidenceView,
) -> None:
    """Item ``n`` of the page, committed: checked and added to its block and the view."""
    height, index = item.get("height"), item.get("index")
    if height not in certified or not isinstance(index, int):
        raise VerificationError(
            f"evidence {n} names block {height!r}, which the answer does not certify"
        )
    pieces = by_height[height]
    if index != len(pieces):
        raise VerificationError(f"block {height}'s evidence is not listed in block order")
    what = f"evidence {index} of block {height}"
    evidence = _piece(item, genesis, what)
    try:
        check_evidence_window(evidence, height)
    except LedgerError as exc:
        raise VerificationError(f"{what}: {exc}") from None
    if evidence.offence in view.offences:
        raise VerificationError(f"{what} repeats an offence already committed")
    view.offences.add(evidence.offence)
    pieces.append(evidence)
    view.committed.append(CommittedPiece(height, index, evidence, certified[height]))


def verify_evidence_page(
    answer: Value, genesis: Genesis, view: EvidenceView | None = None
) -> EvidenceView:
    """Check one ``/v1/evidence`` answer (see the module docstring) into ``view``."""
    view = view if view is not None else EvidenceView()
    if not isinstance(answer, dict):
        raise VerificationError("the evidence answer is malformed")
    items, blocks = answer.get("evidence"), answer.get("blocks")
    if not isinstance(items, list) or not isinstance(blocks, list):
        raise VerificationError("the evidence answer is malformed")
    certified = _certified_blocks(blocks, genesis, view)
    by_height: dict[int, list[Evidence]] = {h: [] for h in certified}
    for n, item in enumerate(items):
        status = item.get("status") if isinstance(item, dict) else None
        if status == "pending":
            view.pending.append(_piece(item, genesis, f"pending evidence {n}"))
        elif status == "committed":
            _committed_piece(item, n, genesis, certified, by_height, view)
        else:
            raise VerificationError(f"evidence {n} is neither committed nor pending")
    for height, pieces in by_height.items():
        if compute_evidence_root(pieces) != certified[height].header.evidence_root:
            raise VerificationError(
                f"block {height}'s evidence root does not match the {len(pieces)} pieces the "
                "node listed (forged, hidden or added evidence)"
            )
    if certified:
        view.last_height = max(certified)
    return view
