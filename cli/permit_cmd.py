"""``cityledger permit check|show``: is permit P valid at time T, with proof.

The permit record is proven against a certified header's state root, and the
verdict is recomputed here from that record and T (the node's own verdict is
only compared): a node cannot make an expired or revoked permit look valid.
A permit that does not exist is proven absent.
"""

from __future__ import annotations

import time
import urllib.parse

import click

from cli.client import NodeClient, genesis_option, node_option
from cli.output import console, fail, print_json, record_json
from cli.render import fmt_time, parse_time, permit_view, verified_line
from contracts import state_keys as sk
from contracts.permits import BLDS_STATUS, effective_status
from ledger.genesis import Genesis
from lightclient.errors import VerificationError
from lightclient.permits import PermitView, verify_permit, verify_validity
from lightclient.records import verify_state_answer


def _connect(node: str, genesis_path: str) -> tuple[NodeClient, Genesis]:
    genesis = Genesis.load(genesis_path)
    return NodeClient(node, chain_id=genesis.chain_id), genesis


def _path(permit_id: str) -> str:
    return f"/v1/permits/{urllib.parse.quote(permit_id, safe='')}"


def _absent(client: NodeClient, genesis: Genesis, permit_id: str, as_json: bool) -> None:
    """The node says 404: make it prove the permit's absence, then exit 1."""
    key = sk.permit_key(permit_id)
    answer = client.get(f"/v1/state/{key.hex()}")
    certified, record = verify_state_answer(answer, genesis, key)
    if record is not None:
        fail(f"REFUSED: {client.url} said permit {permit_id!r} does not exist, but it does")
    if as_json:
        print_json(
            {
                "id": permit_id,
                "exists": False,
                "verified": True,
                "height": certified.height,
                "valid": False,
            }
        )
    else:
        console.print(f"permit {permit_id!r} does not exist (proven absent)")
        console.print(verified_line(certified))
    raise SystemExit(1)


@click.group()
def permit() -> None:
    """Permits: validity at a time, with proof."""


@permit.command()
@click.argument("permit_id", metavar="ID")
@click.option("--at", "at", default=None, help="Time (ms or ISO 8601; default: now).")
@node_option()
@genesis_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(permit_id: str, at: str | None, node: str, genesis_path: str, as_json: bool) -> None:
    """Is permit ID valid at --at? Exit status 0 when valid, 1 when not."""
    try:
        at_ms = parse_time(at) if at is not None else time.time_ns() // 1_000_000
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    client, genesis = _connect(node, genesis_path)
    status, answer = client.get_any(f"{_path(permit_id)}/validity", {"at": at_ms})
    if status == 404:
        _absent(client, genesis, permit_id, as_json)
    if status != 200:
        client.get(f"{_path(permit_id)}/validity", {"at": at_ms})  # raises the node's error
    try:
        view, valid, reason = verify_validity(answer, genesis, permit_id, at_ms)
    except VerificationError as exc:
        fail(f"REFUSED: the answer from {client.url} does not check out: {exc}")
    _show(view, at_ms, valid, reason, as_json)
    if not valid:
        raise SystemExit(1)


@permit.command()
@click.argument("permit_id", metavar="ID")
@node_option()
@genesis_option()
@click.option("--height", type=int, default=None, help="Answer as of this height.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(permit_id: str, node: str, genesis_path: str, height: int | None, as_json: bool) -> None:
    """Permit ID and its history, as of the latest (or --height) certified block."""
    client, genesis = _connect(node, genesis_path)
    status, answer = client.get_any(_path(permit_id), {"height": height})
    if status == 404:
        _absent(client, genesis, permit_id, as_json)
    if status != 200:
        client.get(_path(permit_id), {"height": height})
    try:
        view = verify_permit(answer, genesis, permit_id)
    except VerificationError as exc:
        fail(f"REFUSED: the answer from {client.url} does not check out: {exc}")
    at_ms = view.certified.header.time_ms
    valid = effective_status(view.permit, at_ms) == "issued"
    _show(
        view,
        at_ms,
        valid,
        f"{BLDS_STATUS[effective_status(view.permit, at_ms)]} at block time {fmt_time(at_ms)}",
        as_json,
    )


def _show(view: PermitView, at_ms: int, valid: bool, reason: str, as_json: bool) -> None:
    c = view.certified
    if as_json:
        print_json(
            {
                "id": view.permit.id,
                "at_ms": at_ms,
                "valid": valid,
                "reason": reason,
                "verified": True,
                "height": c.height,
                "verified_by": list(c.signers),
                "permit": record_json(view.permit),
                "history": [record_json(e) for e in view.history],
            }
        )
        return
    console.print(permit_view(view, at_ms, valid, reason))
    console.print(verified_line(c))
    console.print(
        "  the permit record is proven against the state root; the verdict is recomputed from it"
    )
