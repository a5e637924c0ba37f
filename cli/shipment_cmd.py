"""``cityledger shipment provenance|find``: a customs officer's questions, answered with proof.

``provenance`` asks one node for a shipment and its whole history and accepts the
answer only if (see :mod:`lightclient`) the header's commit certificate carries
more than 2/3 of the genesis validators' power, the record and every history
entry are proven against that header's state root (and nothing follows the
last entry), and every entry's transaction is proven committed, successfully,
in a certified block at the height the entry names. Shipment data is not
public: requests are signed with ``--key`` (a member of a party, or customs,
port or auditor roles).
"""

from __future__ import annotations

import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import click

from cli.block_feed import BlockFeed
from cli.client import NodeClient
from cli.output import console, err_console, fail, print_json, record_json
from cli.read_source import PageAsk, Source, paging_options, read_at_options, source_options
from cli.render import SHIPMENTS, TIMELINE, event_order, shipment_view
from cli.shipment_find import date_range, filter_options, find_by_days, search_page
from cli.shipment_names import find_by_names, names_given
from cli.shipment_watch import Watch, follow
from cli.tabular import format_option
from cli.verified_reads import (
    Reads,
    freshness_json,
    freshness_text,
    report_search,
)
from contracts.epcis import epcis_document
from contracts.shipment_records import ShipmentEvent
from contracts.shipment_search import ShipmentFilter
from ledger.encoding import Value
from lightclient.answers import Verified
from lightclient.history import verify_provenance
from lightclient.shipments import ShipmentView

FETCH_THREADS = 4


@dataclass
class ShipmentEvidence:
    """What a node sent about one shipment: the answer and, per history tx, its receipt."""

    answer: dict[str, Value]
    receipts: dict[bytes, dict[str, Value]]


def gather_shipment(
    client: NodeClient, shipment_id: str, height: int | None = None
) -> ShipmentEvidence:
    """Ask for the shipment; fetch each history transaction's receipt unless proofs came with it."""
    path = f"/v1/shipments/{urllib.parse.quote(shipment_id, safe='')}"
    answer = client.get(path, {"height": height}, signed=True)
    if answer.get("history_tx_proofs") is not None:
        return ShipmentEvidence(answer, {})
    history = answer.get("history")
    hashes: list[bytes] = []
    if isinstance(history, list):
        for item in history:
            record = item.get("record") if isinstance(item, dict) else None
            tx_hash = record.get("tx_hash") if isinstance(record, dict) else None
            if isinstance(tx_hash, bytes) and tx_hash not in hashes:
                hashes.append(tx_hash)
    return ShipmentEvidence(answer, fetch_receipts(client, hashes))


def fetch_receipts(client: NodeClient, hashes: list[bytes]) -> dict[bytes, dict[str, Value]]:
    """Receipts by transaction hash, over a few keep-alive connections in parallel."""
    if len(hashes) <= 2:
        return {h: client.get(f"/v1/txs/{h.hex()}") for h in hashes}
    local = threading.local()
    clients: list[NodeClient] = []

    def one(tx_hash: bytes) -> tuple[bytes, dict[str, Value]]:
        mine = getattr(local, "client", None)
        if mine is None:
            mine = local.client = client.clone()
            clients.append(mine)
        return tx_hash, mine.get(f"/v1/txs/{tx_hash.hex()}")

    try:
        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            return dict(pool.map(one, hashes))
    finally:
        for c in clients:
            c.close()


def provenance_of(
    reads: Reads, shipment_id: str, height: int | None = None
) -> tuple[Verified[ShipmentView], ShipmentEvidence]:
    """The shipment and its whole history, verified (now, or at ``height`` as asked)."""
    evidence = gather_shipment(reads.client, shipment_id, height)
    freshness = reads.now_or_at(height)
    verified = reads.accept(
        lambda: verify_provenance(evidence.answer, evidence.receipts, reads.genesis, shipment_id),
        freshness,
    )
    return verified, evidence


def view_json(view: ShipmentView) -> dict[str, Any]:
    """A verified shipment view for ``--json`` (the caller adds :func:`freshness_json`)."""
    c = view.certified
    return {
        "id": view.shipment.id,
        "block_hash": c.header.hash,
        "voting_power": c.power,
        "total_power": c.total_power,
        "shipment": record_json(view.shipment),
        "history": [record_json(e) for e in view.history],
    }


@click.group()
def shipment() -> None:
    """Shipments: provenance and searches, checked against the genesis validators."""


@shipment.command()
@click.argument("shipment_id", metavar="ID")
@read_at_options("Member key that signs the read (shipment data is not public).")
@format_option("epcis", help_text="; epcis: a GS1 EPCIS 2.0 document (JSON-LD).")
def provenance(shipment_id: str, height: int | None, source: Source, fmt: str) -> None:
    """Who held shipment ID, where it has been, what was declared, and customs' decisions.

    The timeline is in event order; ``--format csv`` prints its rows, ``--format epcis``
    the history as a GS1 EPCIS 2.0 document built from the verified records."""
    reads = source.reads()
    verified, _ = provenance_of(reads, shipment_id, height)
    if fmt == "json":
        print_json({**freshness_json(verified), **view_json(verified.view)})
        return
    view = verified.view
    if fmt == "csv":
        TIMELINE.write_csv(event_order(view.history))
    elif fmt == "epcis":
        print_json(epcis_document(view.shipment, view.history, view.certified.header.time_ms))
    else:
        console.print(shipment_view(view))
    notes = err_console if fmt in ("csv", "epcis") else console
    notes.print(freshness_text(verified))
    n = len(view.history)
    notes.print(
        f"  the shipment record and all {n} history entries are proven against the state root "
        f"(nothing follows entry {n - 1}); each entry's transaction is proven committed in a "
        "certified block"
    )


@shipment.command()
@filter_options()
@click.option(
    "--consignor-name",
    default=None,
    help="Part of the consignor's name (case-insensitive); every matching organisation.",
)
@click.option("--consignee-name", default=None, help="Part of the consignee's name (the same).")
@click.option("--party-name", default=None, help="Part of a party's or holder's name.")
@click.option("--from", "first_day", default=None, help="Declared on or after this UTC day.")
@click.option("--to", "last_day", default=None, help="Declared on or before this UTC day.")
@paging_options()
@source_options("Member key that signs the read.")
@format_option()
def find(
    search: ShipmentFilter,
    consignor_name: str | None,
    consignee_name: str | None,
    party_name: str | None,
    first_day: str | None,
    last_day: str | None,
    page: PageAsk,
    source: Source,
    fmt: str,
) -> None:
    """Shipments by container, party (its id, or part of a consignor's, consignee's or
    party's name), status, HS code, port and/or declaration dates (--from/--to,
    YYYY-MM-DD, at most 366 days): proven complete, every record proven."""
    days = date_range(first_day, last_day)
    names = names_given(consignor_name, consignee_name, party_name, search)
    if not any(search) and days is None and not names:
        fail(
            "give at least one of --container, --party, --consignor-name, --consignee-name, "
            "--party-name, --status, --hs, --port, --from/--to"
        )
    if names and page.after is not None:
        fail("a search by name reads every matching organisation's shipments whole: no --after")
    reads = source.reads()
    if names:
        find_by_names(reads, names, search, days, page.height, fmt)
        return
    if not any(search):
        assert days is not None
        if page.after is not None:
            fail("a search by dates alone reads every day whole: it has no --after")
        find_by_days(reads, days, page.height, fmt)
        return
    verified = search_page(reads, search, page.paging(), page.height)
    view = verified.view
    if days is not None:
        view = replace(view, found=tuple(s for s in view.found if days.holds(s)))
    report_search(verified, view, "shipment", SHIPMENTS, fmt)


@shipment.command()
@click.argument("shipment_ids", metavar="[ID]...", nargs=-1)
@filter_options()
@click.option("--all", "every_event", is_flag=True, help="Every event, not only custody/customs.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N events.")
@source_options("Member key that signs the subscription and the reads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def watch(
    shipment_ids: tuple[str, ...],
    search: ShipmentFilter,
    every_event: bool,
    count: int | None,
    source: Source,
    as_json: bool,
) -> None:
    """Print new custody and customs events of shipments ID... (or of a search) as they
    commit, each verified at its block; Ctrl-C stops."""
    if bool(shipment_ids) == any(search):
        fail("give shipment IDs, or search options (--container, --party, …), not both")
    reads = source.reads()
    reads.signer()  # the subscription and the reads are signed
    spec = Watch(reads, shipment_ids, search, every_event, as_json)

    def history(shipment_id: str, height: int) -> tuple[ShipmentEvent, ...]:
        return provenance_of(reads, shipment_id, height)[0].view.history

    feed = BlockFeed(reads.client.clone()).start()
    if not as_json:
        err_console.print("watching; new events print as they commit (Ctrl-C stops)")
    try:
        follow(spec, feed, history, count)
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
