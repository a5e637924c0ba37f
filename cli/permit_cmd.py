"""``cityledger permit check|show|list``: is permit P valid at time T, with proof.

The permit record and its whole history are proven against a certified header's
state root, and the verdict is computed here (the node's own verdict is not
asked for): a node cannot make an expired or revoked permit look valid. Validity
at a time T is judged on the permit as it stood at T: the latest proven history
says which entries were written by T, and the permit's proven state at the
height of the last of them is checked to be exactly that permit
(:mod:`lightclient.permits`). A permit that does not exist is proven absent.
``list`` pages through the permits of a holder or an address, proven complete.
Every answer goes through :class:`cli.verified_reads.Reads`.
"""

from __future__ import annotations

import urllib.parse

import click

from cli.options import json_option
from cli.output import console, fail, print_json, record_json
from cli.permit_qr import qr
from cli.read_source import PageAsk, Source, paging_options, read_at_options, source_options
from cli.render import fmt_time, parse_time, permit_view
from cli.tabular import Column, Listing, format_option
from cli.verified_reads import (
    Reads,
    freshness_json,
    freshness_text,
    report_search,
)
from contracts import state_keys as sk
from contracts.permit_records import Permit
from contracts.permits import permit_valid_at
from ledger.encoding import Value
from lightclient.answers import Freshness, Verified
from lightclient.errors import VerificationError
from lightclient.permits import (
    PermitView,
    entries_by,
    state_height_at,
    verify_permit,
    verify_permit_then,
)
from lightclient.records import verify_state_view
from lightclient.search import verify_permit_search


def _path(permit_id: str) -> str:
    return f"/v1/permits/{urllib.parse.quote(permit_id, safe='')}"


def _fetch(
    reads: Reads, permit_id: str, freshness: Freshness, as_json: bool
) -> Verified[PermitView]:
    """The permit and its whole history at ``freshness``'s height (default: the latest)."""
    client, params = reads.client, {"height": freshness.height}
    status, answer = client.get_any(_path(permit_id), params)
    if status == 404:
        _absent(reads, permit_id, freshness, as_json)
    if status != 200:
        client.get(_path(permit_id), params)  # raises the node's error
    return reads.accept(lambda: verify_permit(answer, reads.genesis, permit_id), freshness)


def _absent(reads: Reads, permit_id: str, freshness: Freshness, as_json: bool) -> None:
    """The node says 404: make it prove the permit's absence, then exit 1."""
    key = sk.permit_key(permit_id)
    answer = reads.client.get(f"/v1/state/{key.hex()}", {"height": freshness.height})
    verified = reads.accept(lambda: verify_state_view(answer, reads.genesis, key), freshness)
    if verified.view.value is not None:
        reads.refuse(VerificationError(f"the node said permit {permit_id!r} does not exist"))
    if as_json:
        print_json({"id": permit_id, "exists": False, "valid": False, **freshness_json(verified)})
    else:
        console.print(f"permit {permit_id!r} does not exist (proven absent)")
        console.print(freshness_text(verified))
    raise SystemExit(1)


@click.group()
def permit() -> None:
    """Permits: validity at a time, with proof."""


permit.add_command(qr)


@permit.command()
@click.argument("permit_id", metavar="ID")
@click.option("--at", "at", default=None, help="Time (ms or ISO 8601; default: now).")
@read_at_options()
@json_option()
def check(
    permit_id: str, at: str | None, height: int | None, source: Source, as_json: bool
) -> None:
    """Is permit ID valid now, at --at, or at block --height? Exit 0 when valid, 1 when not."""
    if at is not None and height is not None:
        raise click.BadParameter("give --at or --height, not both", param_hint="--at")
    try:
        at_ms = parse_time(at) if at is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    reads = source.reads()
    if height is not None:
        then = _fetch(reads, permit_id, reads.at_height(height), as_json)
        at_ms = then.time_ms
    else:
        at_ms = reads.clock() if at_ms is None else at_ms
        then = _permit_at(reads, permit_id, at_ms, as_json)
    valid, reason = permit_valid_at(then.view.permit, at_ms)
    if not then.view.history or then.view.history[0].time_ms > at_ms:
        valid, reason = False, "the permit did not exist yet at that time"
    _show(then, at_ms, valid, reason, as_json)
    if not valid:
        raise SystemExit(1)


def _permit_at(reads: Reads, permit_id: str, at_ms: int, as_json: bool) -> Verified[PermitView]:
    """The permit as it stood at ``at_ms``, proven: the latest answer when nothing was
    written to it since, else its state at the height of the last entry written by then."""
    latest = _fetch(reads, permit_id, reads.covering(at_ms), as_json)
    count = entries_by(latest.view, at_ms)
    then_height = state_height_at(latest.view, at_ms)
    if then_height is None or count == len(latest.view.history):
        return latest
    asked = f"the permit as it stood at {fmt_time(at_ms)}"
    then = _fetch(reads, permit_id, reads.at_height(then_height, asked), as_json)
    try:
        verify_permit_then(then.view, latest.view, at_ms)
    except VerificationError as exc:
        reads.refuse(exc)
    return then


@permit.command()
@click.argument("permit_id", metavar="ID")
@read_at_options()
@json_option()
def show(permit_id: str, height: int | None, source: Source, as_json: bool) -> None:
    """Permit ID and its whole history, as of the latest (or --height) certified block."""
    reads = source.reads()
    freshness = reads.now_or_at(height)
    verified = _fetch(reads, permit_id, freshness, as_json)
    at_ms = verified.time_ms
    valid, reason = permit_valid_at(verified.view.permit, at_ms)
    _show(verified, at_ms, valid, f"{reason} (at block time {fmt_time(at_ms)})", as_json)


@permit.command("list")
@click.option("--holder", default=None, help="Organisation id holding the permits.")
@click.option("--address", default=None, help="Address (case and spacing ignored).")
@paging_options()
@source_options()
@format_option()
def list_permits(
    holder: str | None,
    address: str | None,
    page: PageAsk,
    source: Source,
    fmt: str,
) -> None:
    """Permits held by --holder or at --address: proven complete, every record proven."""
    if (holder is None) == (address is None):
        fail("give exactly one of --holder, --address")
    reads = source.reads()
    paging = page.paging()
    search = {"holder": holder, "address": address}
    answer = reads.client.get("/v1/permits", {**search, **page.params()})
    verified = reads.accept(
        lambda: verify_permit_search(answer, reads.genesis, holder, address, paging),
        reads.now_or_at(page.height),
    )
    view = verified.view
    report_search(verified, view, "permit", PERMITS, fmt)


PERMITS: Listing[Permit] = Listing(
    [
        Column("permit", "permit", lambda p: p.id),
        Column("type", "type", lambda p: p.type),
        Column("holder", "holder", lambda p: p.holder),
        Column("status", "status", lambda p: p.status),
        Column("valid_from", "", lambda p: fmt_time(p.valid_from or None), only="csv"),
        Column("valid_until", "", lambda p: fmt_time(p.valid_until or None), only="csv"),
        Column("address", "address", lambda p: p.address),
    ]
)


def permit_json(verified: Verified[PermitView]) -> dict[str, Value]:
    view = verified.view
    return {
        "id": view.permit.id,
        **freshness_json(verified),
        "permit": record_json(view.permit),
        "history": [record_json(e) for e in view.history],
    }


def _show(
    verified: Verified[PermitView], at_ms: int, valid: bool, reason: str, as_json: bool
) -> None:
    if as_json:
        print_json({**permit_json(verified), "at_ms": at_ms, "valid": valid, "reason": reason})
        return
    console.print(permit_view(verified.view, at_ms, valid, reason))
    console.print(freshness_text(verified))
    n = len(verified.view.history)
    console.print(
        f"  the permit record and all {n} history entries are proven against the state root; "
        "the verdict is computed here from the permit as it stood at that time"
    )
