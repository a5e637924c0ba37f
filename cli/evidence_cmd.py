"""``cityledger evidence list``: equivocation evidence committed on the chain, checked.

The node's ``/v1/evidence`` lists committed evidence by block, each block with its
header and commit certificate, then its own pending pool. Every page is checked by
:func:`lightclient.evidence.verify_evidence_page` (certificates, evidence roots,
every piece re-verified); a node that lies in any of it is refused. Pending pieces
(not committed yet) are verified the same way and shown apart.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from cli.client import NodeClient, genesis_option, node_option
from cli.options import json_option
from cli.output import console, print_json
from cli.render import short, verified_line
from cli.verified_reads import Reads
from ledger.evidence import ConflictingProposalEvidence, Evidence, evidence_summary
from ledger.genesis import Genesis
from ledger.votes import NIL
from lightclient.errors import VerificationError
from lightclient.evidence import EvidenceView, verify_evidence_page

MAX_PAGES = 10_000


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
            raise VerificationError("the node's next page of evidence does not move forward")
        params = {"from": next_from} | extra
    raise VerificationError(f"the node's evidence did not end within {MAX_PAGES} pages")


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
@json_option()
def list_evidence(node: str, genesis_path: str, start: int, as_json: bool) -> None:
    """Committed evidence (and the node's pending pool), each piece re-verified against
    the genesis validators and its block's commit certificate."""
    genesis = Genesis.load(genesis_path)
    client = NodeClient(node)
    Reads(client, genesis)  # another chain is named as such before anything is listed
    view = fetch_evidence(client, genesis, start)
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
