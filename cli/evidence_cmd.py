"""``cityledger evidence list``: equivocation evidence committed on the chain, checked.

The node's ``/v1/evidence`` lists committed evidence by block, each block with its
header and commit certificate, then its own pending pool. Nothing it says is taken
on trust (:func:`verify_evidence_page`): every block's certificate must carry >2/3
of the genesis validators' power for its header, the pieces listed for a block must
be exactly those under the header's ``evidence_root`` (none forged, hidden or
added), and every piece is re-verified here: both signatures, by a genesis validator
(the round's proposer for proposals), two different messages for one height, round
and step, from a height the block may commit, and no offence twice. A node that lies
in any of it is refused. Pending pieces (not committed yet) are verified the same way
and shown apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from rich.table import Table

from cli.client import NodeClient, genesis_option, node_option
from cli.output import console, print_json
from cli.render import short, verified_line
from cli.verify import CertifiedHeader, VerificationError, verify_certified
from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.evidence import (
    ConflictingProposalEvidence,
    Evidence,
    Offence,
    check_evidence_window,
    compute_evidence_root,
    evidence_from_obj,
    evidence_summary,
)
from ledger.genesis import Genesis
from ledger.votes import NIL

MAX_PAGES = 10_000


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


def _fail(message: str) -> VerificationError:
    return VerificationError(message)


def _piece(item: Value, genesis: Genesis, what: str) -> Evidence:
    """The evidence an item carries, re-verified; its summary fields must match it."""
    if not isinstance(item, dict):
        raise _fail(f"{what} is malformed")
    try:
        evidence = evidence_from_obj(item.get("evidence"))
    except LedgerError as exc:
        raise _fail(f"{what} is not evidence of equivocation: {exc}") from None
    for name, value in evidence_summary(evidence).items():
        if item.get(name) != value:
            raise _fail(f"{what}: its {name} differs from the evidence it carries")
    try:
        evidence.verify(genesis.chain_id, genesis.validators)
    except LedgerError as exc:
        raise _fail(f"{what} does not verify (forged evidence): {exc}") from None
    return evidence


def verify_evidence_page(
    answer: Value, genesis: Genesis, view: EvidenceView | None = None
) -> EvidenceView:
    """Check one ``/v1/evidence`` answer (see the module docstring) into ``view``."""
    view = view if view is not None else EvidenceView()
    if not isinstance(answer, dict):
        raise _fail("the evidence answer is malformed")
    items, blocks = answer.get("evidence"), answer.get("blocks")
    if not isinstance(items, list) or not isinstance(blocks, list):
        raise _fail("the evidence answer is malformed")
    certified: dict[int, CertifiedHeader] = {}
    for entry in blocks:
        if not isinstance(entry, dict):
            raise _fail("the evidence answer is malformed")
        got = verify_certified(entry, genesis)
        if got.height <= view.last_height or got.height in certified:
            raise _fail(f"block {got.height} is listed twice or out of order")
        certified[got.height] = got
    by_height: dict[int, list[Evidence]] = {h: [] for h in certified}
    for n, item in enumerate(items):
        status = item.get("status") if isinstance(item, dict) else None
        if status == "pending":
            view.pending.append(_piece(item, genesis, f"pending evidence {n}"))
            continue
        if status != "committed":
            raise _fail(f"evidence {n} is neither committed nor pending")
        height, index = item.get("height"), item.get("index")
        if height not in certified or not isinstance(index, int):
            raise _fail(f"evidence {n} names block {height!r}, which the answer does not certify")
        pieces = by_height[height]
        if index != len(pieces):
            raise _fail(f"block {height}'s evidence is not listed in block order")
        what = f"evidence {index} of block {height}"
        evidence = _piece(item, genesis, what)
        try:
            check_evidence_window(evidence, height)
        except LedgerError as exc:
            raise _fail(f"{what}: {exc}") from None
        if evidence.offence in view.offences:
            raise _fail(f"{what} repeats an offence already committed")
        view.offences.add(evidence.offence)
        pieces.append(evidence)
        view.committed.append(CommittedPiece(height, index, evidence, certified[height]))
    for height, pieces in by_height.items():
        if compute_evidence_root(pieces) != certified[height].header.evidence_root:
            raise _fail(
                f"block {height}'s evidence root does not match the {len(pieces)} pieces the "
                "node listed (forged, hidden or added evidence)"
            )
    if certified:
        view.last_height = max(certified)
    return view


def fetch_evidence(
    client: NodeClient, genesis: Genesis, start: int = 1, page_blocks: int | None = None
) -> EvidenceView:
    """Every page of committed evidence from ``start`` (``page_blocks`` blocks a page:
    the node's default when None), each page checked."""
    view = EvidenceView()
    extra: dict[str, Any] = {} if page_blocks is None else {"limit": page_blocks}
    params: dict[str, Any] = {"from": start} | extra
    for page in range(MAX_PAGES):
        answer = client.get("/v1/evidence", params)
        kept = len(view.pending)
        verify_evidence_page(answer, genesis, view)
        if page > 0:  # every page repeats the pool (each copy is checked): list it once
            del view.pending[kept:]
        next_from = answer.get("next_from")
        if next_from is None:
            return view
        if not isinstance(next_from, int) or next_from <= view.last_height:
            raise _fail("the node's next page of evidence does not move forward")
        params = {"from": next_from} | extra
    raise _fail(f"the node's evidence did not end within {MAX_PAGES} pages")


def _messages(evidence: Evidence) -> str:
    if isinstance(evidence, ConflictingProposalEvidence):
        a, b = evidence.proposal_a, evidence.proposal_b
        return (
            f"{short(a.block_hash, 12)} (vr {a.valid_round}) / "
            f"{short(b.block_hash, 12)} (vr {b.valid_round})"
        )
    hashes = [v.block_hash for v in (evidence.vote_a, evidence.vote_b)]
    return " / ".join("nil" if h == NIL else short(h, 12) for h in hashes)


def _what(evidence: Evidence) -> str:
    kind, _, height, round_, vote_type = evidence.offence
    step = ("proposal", "prevote", "precommit")[vote_type]
    return f"{kind} ({step}) h{height} r{round_}"


@click.group()
def evidence() -> None:
    """Equivocation evidence committed on the chain."""


@evidence.command("list")
@node_option()
@genesis_option()
@click.option("--from", "start", type=click.IntRange(min=1), default=1, show_default=True,
              help="First block height to list from.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_evidence(node: str, genesis_path: str, start: int, as_json: bool) -> None:
    """Committed evidence (and the node's pending pool), each piece re-verified against
    the genesis validators and its block's commit certificate."""
    genesis = Genesis.load(genesis_path)
    view = fetch_evidence(NodeClient(node), genesis, start)
    names = {v.public_key: v.name for v in genesis.validators.validators}
    if as_json:
        print_json(
            {
                "verified": True,
                "committed": [
                    {
                        "height": p.height,
                        "index": p.index,
                        "offender_name": names.get(p.evidence.offender),
                        "verified_by": list(p.certified.signers),
                    }
                    | evidence_summary(p.evidence)
                    for p in view.committed
                ],
                "pending": [
                    {"offender_name": names.get(e.offender)} | evidence_summary(e)
                    for e in view.pending
                ],
            }
        )
        return
    table = Table(title="equivocation evidence", title_justify="left")
    for name in ("block", "offender", "offence", "the two messages (block hashes)", "status"):
        table.add_column(name)
    for p in view.committed:
        who = names.get(p.evidence.offender, short(p.evidence.offender))
        table.add_row(str(p.height), who, _what(p.evidence), _messages(p.evidence), "committed")
    for e in view.pending:
        who = names.get(e.offender, short(e.offender))
        table.add_row("-", who, _what(e), _messages(e), "[yellow]pending[/]")
    if view.committed or view.pending:
        console.print(table)
    blocks = {p.height: p.certified for p in view.committed}
    console.print(
        f"{len(view.committed)} pieces committed in {len(blocks)} blocks from height {start}"
        + (f", {len(view.pending)} pending in the node's pool" if view.pending else "")
    )
    for certified in blocks.values():
        console.print(verified_line(certified))
    if view.committed:
        console.print(
            "  every piece: both signatures by a genesis validator, a real equivocation, "
            "in its block's evidence root, no offence twice"
        )
    if view.pending:
        console.print(
            "  [yellow]pending[/] pieces are signed equivocations this node holds; no block "
            "commits them yet"
        )
