"""``cityledger gov ...``: governance proposals, approvals, and what became of them.

``gov propose KIND`` signs a ``gov.propose`` with an admin key of a founding
agency and prints the proposal's id (``gov-`` and the first 16 bytes of the
transaction hash: known before it commits). ``gov approve ID`` / ``gov withdraw
ID`` act on one. Every sending command takes the options of ``cityledger tx``
(``--key``, ``--node``, ``--wait``, ``--genesis``, ``--nonce``, ``--json``) and
checks the payload locally first.

``gov list`` and ``gov show ID`` are signed reads (governance records are for
members: ``--key`` is any member key). With ``--genesis`` the proposal record is
checked against its state proof and the certified header (``verified``);
without, the node's word is shown and marked ``unverified``. The status shown
is computed from the record at the answered height (``expired`` is never stored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from cli.client import NodeClient, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.output import console, fail, print_json, record_json
from cli.tx_cmd import Build, Sender, _command, _fields
from cli.verified_reads import Reads, freshness_json, freshness_text
from contracts.governance_payloads import SETTABLE_PARAMS, possession_message
from contracts.governance_records import PROPOSAL_ID_PATTERN, Proposal, proposal_id_of, proposal_key
from ledger.block import BlockHeader
from ledger.crypto import Purpose
from ledger.encoding import Value
from ledger.genesis import Genesis
from ledger.tx import Transaction
from lightclient.answers import Verified
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader, NoHistory, verify_certified
from lightclient.records import require_typed


def _hex_key(text: str, option: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        fail(f"{option} must be hex (64 characters): {text[:80]!r}")
    if len(raw) != 32:
        fail(f"{option} must be a 32-byte Ed25519 public key in hex, got {len(raw)} bytes")
    return raw


def _key(f: dict[str, Any], _: Sender) -> bytes:
    return _hex_key(f["public_key"], "--public-key")


def _proof(f: dict[str, Any], sender: Sender) -> bytes:
    """The new key signs the rotation (its file is read here, never sent)."""
    new = load_key(f["new_key"])
    return new.sign(
        Purpose.VALIDATOR_KEY, sender.chain_id, possession_message(_key(f, sender), new.public_key)
    )


def _new_key(f: dict[str, Any], _: Sender) -> bytes:
    return load_key(f["new_key"]).public_key


def _settings(f: dict[str, Any], _: Sender) -> dict[str, Value]:
    """``--set NAME=VALUE``: integers, or comma-separated HS prefixes for restricted_hs_codes."""
    out: dict[str, Value] = {}
    for item in f["set"]:
        name, sep, value = item.partition("=")
        if not sep or name not in SETTABLE_PARAMS:
            fail(
                f"--set {item!r}: give NAME=VALUE, NAME one of {', '.join(sorted(SETTABLE_PARAMS))}"
            )
        if name == "restricted_hs_codes":
            out[name] = [code for code in value.split(",") if code]
        elif value.isdigit():
            out[name] = int(value)
        else:
            fail(f"--set {item!r}: {name} takes a whole number")
    return out


def _grant(f: dict[str, Any], sender: Sender) -> dict[str, Value]:
    """One member's grant (a grant may list up to 48: ``tx send gov.propose --file``)."""
    member = _fields(public_key=_key, name="name", roles="roles")(f, sender)
    return {"org": f["org"], "members": [member]}


def _change(kind: str, build: Build) -> Build:
    """A ``gov.propose`` payload whose change ``build`` makes."""
    return lambda f, sender: {"kind": kind, "change": build(f, sender)}


def _pid(tx: Transaction) -> dict[str, str]:
    return {"proposal_id": proposal_id_of(tx.hash)}


# kind -> (options, the change's fields)
PROPOSALS: dict[str, tuple[str, Build]] = {
    "validator-add": (
        "--public-key --name --power# --p2p? --org?",
        _fields(public_key=_key, name="name", power="power", p2p="p2p", org="org"),
    ),
    "validator-remove": ("--public-key", _fields(public_key=_key)),
    "validator-power": ("--public-key --power#", _fields(public_key=_key, power="power")),
    "validator-rotate": (
        "--public-key --new-key",
        _fields(public_key=_key, new_public_key=_new_key, proof=_proof),
    ),
    "role-grant": ("--org --public-key --name --role*", _grant),
    "org-suspend": ("--org --reason", _fields(org="org", reason="reason")),
    "org-unsuspend": ("--org --reason", _fields(org="org", reason="reason")),
    "founding-admit": ("--org", _fields(org="org")),
    "params-set": ("--set*", _fields(params=_settings)),
}


@click.group()
def gov() -> None:
    """Governance: changes the founding agencies approve on chain (more than 2/3 of them)."""


@gov.group()
def propose() -> None:
    """Propose a change (an admin of a founding agency; its agency counts as approving)."""


def _register() -> None:
    for kind, (spec, build) in PROPOSALS.items():
        _command(propose, kind, "gov.propose", spec, _change(kind, build), _pid)
    _command(gov, "approve", "gov.approve", "ID", _fields(id="id"))
    _command(gov, "withdraw", "gov.withdraw", "ID", _fields(id="id"))


_register()


# --- reading proposals ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalView(NoHistory):
    """A proposal proven under a certified header."""

    certified: CertifiedHeader
    proposal: Proposal


def verify_proposal(answer: Value, genesis: Genesis, pid: str) -> ProposalView:
    """A ``/v1/gov/proposals/{id}`` answer: the record proven at its key."""
    certified = verify_certified(answer, genesis)
    if not isinstance(answer, dict):
        raise VerificationError("the answer is not a map")
    record = require_typed(answer.get("proposal"), certified.header, proposal_key(pid), Proposal)
    return ProposalView(certified, record)


def _client(key_path: str, node: str, genesis: Genesis | None) -> NodeClient:
    chain_id = None if genesis is None else genesis.chain_id
    return NodeClient(node, key=load_key(key_path), chain_id=chain_id)


_READ = [
    key_option(required=True, help_text="A member key (governance records are for members)."),
    node_option(),
    genesis_option(required=False),
    click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
]


def _read_options(command: Any) -> Any:
    for decorator in reversed(_READ):
        command = decorator(command)
    return command


@gov.command()
@click.argument("proposal_id", metavar="ID")
@_read_options
def show(
    proposal_id: str, key_path: str, node: str, genesis_path: str | None, as_json: bool
) -> None:
    """One proposal: kind, change, approvals, status (pending / executed / expired /
    withdrawn / refused) and the effective height; proven with --genesis."""
    if not PROPOSAL_ID_PATTERN.match(proposal_id):
        fail(f"{proposal_id[:80]!r} is not a proposal id (gov-<32 hex>, printed by gov propose)")
    genesis = Genesis.load(genesis_path) if genesis_path else None
    client = _client(key_path, node, genesis)
    answer = client.get(f"/v1/gov/proposals/{proposal_id}")
    if genesis is None:
        record = Proposal.from_obj(_record(answer.get("proposal")))
        _show(record, int(str(answer.get("height"))), as_json, {"verified": False})
        return
    reads = Reads(client, genesis)
    verified = reads.accept(lambda: verify_proposal(answer, genesis, proposal_id), reads.current())
    _show_verified(verified, as_json)


def _show_verified(verified: Verified[ProposalView], as_json: bool) -> None:
    view = verified.view
    extra = {"verified": True, **freshness_json(verified)}
    _show(view.proposal, view.certified.header.height, as_json, extra)
    if not as_json:
        console.print(freshness_text(verified))


def _show(record: Proposal, height: int, as_json: bool, extra: dict[str, Any]) -> None:
    status = record.status_at(height)
    if as_json:
        print_json({"status": status, "proposal": record_json(record), **extra})
        return
    console.print(f"proposal {record.id}: {record.kind} by {record.proposer_org}")
    console.print(f"  status: {status} (as of height {height})")
    change = json.dumps(record_json(record)["change"], default=bytes.hex, sort_keys=True)
    console.print(f"  change: {change}", highlight=False, soft_wrap=True)
    console.print(f"  approvals: {', '.join(record.approvals)}")
    console.print(
        f"  created at height {record.created_height}, open until {record.expires_height}"
    )
    if record.effective_height is not None:
        console.print(f"  effective from height {record.effective_height}")
    if record.refusal:
        console.print(f"  refused: {record.refusal}: {record.refusal_message}")
    if not extra.get("verified"):
        console.print("  unverified: the node's word (give --genesis to check the proof)")


@dataclass(frozen=True, slots=True)
class ListView(NoHistory):
    """Proposals proven under one certified header: (position, status at it, record)."""

    certified: CertifiedHeader
    rows: tuple[tuple[int, Proposal], ...]


def verify_list(answer: Value, genesis: Genesis) -> ListView:
    """A ``/v1/gov/proposals`` answer, each record proven under its certified header."""
    certified = verify_certified(answer, genesis)
    return ListView(certified, _rows(answer, certified.header))


def _rows(answer: Value, header: BlockHeader | None) -> tuple[tuple[int, Proposal], ...]:
    """The listed (position, record)s: proven under ``header``, or as sent when None."""
    if not isinstance(answer, dict) or not isinstance(answer.get("proposals"), list):
        raise VerificationError("the answer holds no proposal list")
    rows = []
    for item in answer["proposals"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise VerificationError("a listed proposal has no id")
        pid = str(item["id"])
        if not PROPOSAL_ID_PATTERN.match(pid):
            raise VerificationError(f"{pid[:80]!r} is not a proposal id")
        if header is not None:
            record = require_typed(item.get("proposal"), header, proposal_key(pid), Proposal)
        else:
            record = Proposal.from_obj(_record(item.get("proposal")))
        rows.append((int(str(item.get("n", 0))), record))
    return tuple(rows)


def _record(item: Value) -> Value:
    if not isinstance(item, dict):
        raise VerificationError("the answer holds no record item")
    return item.get("record")


@gov.command("list")
@click.option(
    "--before", type=click.IntRange(min=0), default=None, help="Page: below this position."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@_read_options
def list_(
    before: int | None,
    limit: int,
    key_path: str,
    node: str,
    genesis_path: str | None,
    as_json: bool,
) -> None:
    """Proposals, newest first, with their status at the latest height (proven with
    --genesis; a list proves each record shown, not that none was left out)."""
    genesis = Genesis.load(genesis_path) if genesis_path else None
    params = {"limit": limit} | ({"before": before} if before is not None else {})
    client = _client(key_path, node, genesis)
    answer = client.get("/v1/gov/proposals", params)
    if genesis is None:
        _print_list(int(str(answer.get("height"))), _rows(answer, None), False, as_json)
        return
    reads = Reads(client, genesis)
    verified = reads.accept(lambda: verify_list(answer, genesis), reads.current())
    _print_list(verified.view.certified.header.height, verified.view.rows, True, as_json)
    if not as_json:
        console.print(freshness_text(verified))


def _print_list(
    height: int, rows: tuple[tuple[int, Proposal], ...], verified: bool, as_json: bool
) -> None:
    more = rows[-1][0] if rows and rows[-1][0] > 0 else None
    if as_json:
        proposals = [{"status": p.status_at(height), "proposal": record_json(p)} for _, p in rows]
        print_json(
            {
                "height": height,
                "verified": verified,
                "proposals": proposals,
                "next_before": more,
            }
        )
        return
    for _, p in rows:
        console.print(
            f"{p.id}  {p.kind:<17} {p.status_at(height):<9} by {p.proposer_org}, "
            f"{len(p.approvals)} approval(s), open until {p.expires_height}"
        )
    if not rows:
        console.print("no proposals")
    if more is not None:
        console.print(f"more: --before {more}")
    if not verified:
        console.print("unverified: the node's word (give --genesis to check the proofs)")
