"""How the CLI shows things to people: times, tables and timelines (rich).

Pure presentation: every function takes already-verified values and returns a
rich renderable or a string. ``--json`` output does not come through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cli.money import money
from cli.tabular import Column, Listing
from contracts.shipment_records import Document, GoodsLine, Shipment, ShipmentEvent
from ledger.block import Receipt
from lightclient.headers import CertifiedHeader
from lightclient.permits import PermitView
from lightclient.shipments import ShipmentView

# --- times ------------------------------------------------------------------------------------


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as ``2024-05-01 12:00:00Z`` (UTC)."""
    if ms is None:
        return "-"
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


def parse_time(text: str) -> int:
    """``1700000000000`` (ms) or ISO 8601 (``2024-05-01``, ``2024-05-01T12:00:00Z``) to ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is neither milliseconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def short(value: bytes | str, n: int = 16) -> str:
    text = value.hex() if isinstance(value, bytes) else value
    return text if len(text) <= n else text[:n] + "…"


def verified_line(certified: CertifiedHeader) -> Text:
    return Text.assemble(("✔ ", "bold green"), (certified.describe(), "green"))


# --- shipments --------------------------------------------------------------------------------


def _kv_table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


def shipment_summary(s: Shipment) -> RenderableType:
    offer = s.custody_offer
    rows = [
        ("shipment", f"[bold]{s.id}[/]"),
        ("status", f"{s.stage} · customs {s.customs_status}"),
        ("route", f"{s.origin} → {s.destination} (last seen {s.last_place})"),
        ("consignor", s.consignor),
        ("consignee", s.consignee),
        ("declarant", s.declarant),
        ("holder", s.holder + (f" (custody offered to {offer.to})" if offer else "")),
        ("held by", " → ".join(s.holders)),
        ("containers", ", ".join(s.containers) or "-"),
    ]
    if s.licence_id:
        rows.append(("licence", s.licence_id))
    return _kv_table(rows)


def goods_table(goods: Sequence[GoodsLine]) -> Table:
    table = Table(title="goods", title_justify="left")
    for name in ("HS code", "description", "quantity", "value"):
        table.add_column(name, justify="right" if name in ("quantity", "value") else "left")
    for g in goods:
        table.add_row(
            g.hs_code,
            g.description,
            f"{g.quantity:,} {g.unit}",
            money(g.value, g.currency),
        )
    return table


def documents_table(documents: Sequence[Document]) -> Table:
    table = Table(title="documents (SHA-256 of the off-chain file)", title_justify="left")
    for name in ("type", "sha256", "attached by", "height"):
        table.add_column(name)
    for d in documents:
        table.add_row(d.type, d.sha256.hex(), d.attached_by, str(d.height))
    return table


def describe_event(entry: ShipmentEvent) -> str:
    """One line for a provenance entry: what happened, with its details."""
    event, d = entry.event, entry.details
    if event == "milestone":
        return f"milestone: {d.get('milestone', '?')}"
    if event == "customs_decision":
        text = f"customs: {d.get('decision', '?')} ({d.get('reason', '')})"
        return text + (f", licence {d['licence_id']}" if d.get("licence_id") else "")
    if event == "custody_offered":
        return f"custody offered to {d.get('to', '?')}"
    if event == "custody_transferred":
        return f"custody {d.get('from', '?')} → {d.get('to', '?')}"
    if event == "document_attached":
        return f"document attached: {d.get('type', '?')} {short(d.get('sha256', b''), 12)}"
    if event == "declared":
        return f"declared for {d.get('destination', '?')} ({d.get('goods_lines', '?')} goods lines)"
    if event == "delivered":
        return f"delivered to {d.get('to', '?')}"
    return str(event)


def event_order(history: Sequence[ShipmentEvent]) -> list[ShipmentEvent]:
    """Entries in the order things happened (event time), ties in recorded order."""
    return sorted(history, key=lambda e: (e.time_ms, e.seq))


def recorded_note(e: ShipmentEvent) -> str:
    """The block time the entry was recorded at, where it differs from the event time."""
    return "" if e.recorded_ms == e.time_ms else fmt_time(e.recorded_ms)


TIMELINE: Listing[ShipmentEvent] = Listing(
    [
        Column("seq", "#", lambda e: str(e.seq), right=True),
        Column("event_time", "event time (UTC)", lambda e: fmt_time(e.time_ms)),
        Column("recorded_time", "recorded (if other)", recorded_note),
        Column("place", "place", lambda e: e.place or ""),
        Column("event", "event", lambda e: e.event, only="csv"),
        Column("description", "event", describe_event),
        Column("organisation", "organisation", lambda e: e.actor_org),
        Column("height", "height", lambda e: str(e.height), right=True),
        Column("tx_hash", "", lambda e: e.tx_hash.hex(), only="csv"),
    ],
    title="provenance (EPCIS what / when / where / why / who), in event order",
)


def timeline_table(history: Sequence[ShipmentEvent]) -> Table:
    """The provenance in event order; ``#`` is the entry's recorded sequence number."""
    return TIMELINE.table(event_order(history))


def shipment_view(view: ShipmentView) -> RenderableType:
    s = view.shipment
    parts: list[RenderableType] = [shipment_summary(s), goods_table(s.goods)]
    if s.documents:
        parts.append(documents_table(s.documents))
    parts.append(timeline_table(view.history))
    return Group(*parts)


SHIPMENTS: Listing[Shipment] = Listing(
    [
        Column("shipment", "shipment", lambda s: s.id),
        Column("stage", "stage", lambda s: s.stage),
        Column("customs_status", "customs", lambda s: s.customs_status),
        Column("holder", "holder", lambda s: s.holder),
        Column("consignor", "consignor", lambda s: s.consignor, only="csv"),
        Column("consignee", "consignee", lambda s: s.consignee, only="csv"),
        Column("route", "route", lambda s: f"{s.origin} → {s.destination}", only="table"),
        Column("origin", "", lambda s: s.origin, only="csv"),
        Column("destination", "", lambda s: s.destination, only="csv"),
        Column("containers", "containers", lambda s: " ".join(s.containers)),
        Column("declared_time", "", lambda s: fmt_time(s.declared_time_ms), only="csv"),
        Column("updated_height", "updated", lambda s: str(s.updated_height)),
    ]
)


# --- permits, receipts, blocks ----------------------------------------------------------------


def _times_in(text: str) -> str:
    """Millisecond timestamps inside a contract's message, as readable UTC times."""
    return re.sub(r"\b1\d{12}\b", lambda m: fmt_time(int(m.group())), text)


def permit_view(view: PermitView, at_ms: int, valid: bool, reason: str) -> RenderableType:
    p = view.permit
    reason = _times_in(reason)
    verdict = "[bold green]VALID[/]" if valid else "[bold red]NOT VALID[/]"
    rows = [
        ("permit", f"[bold]{p.id}[/] ({p.type})"),
        ("holder", p.holder),
        ("address", p.address),
        ("status", p.status),
        ("valid", f"{fmt_time(p.valid_from or None)} → {fmt_time(p.valid_until or None)}"),
        ("at", f"{fmt_time(at_ms)}: {verdict} — {reason}"),
    ]
    parts: list[RenderableType] = [_kv_table(rows)]
    if view.history:
        table = Table(title="history", title_justify="left")
        for name in ("#", "time (UTC)", "action", "status", "organisation", "height"):
            table.add_column(name)
        for e in view.history:
            table.add_row(
                str(e.seq),
                fmt_time(e.time_ms),
                e.action,
                e.status,
                e.actor_org,
                str(e.height),
            )
        parts.append(table)
    return Group(*parts)


def receipt_view(receipt: Receipt, header_time_ms: int) -> RenderableType:
    status = "[green]committed[/]" if receipt.ok else f"[red]failed: {receipt.code}[/]"
    rows = [
        ("transaction", receipt.tx_hash.hex()),
        ("status", status + (f" — {receipt.message}" if receipt.message else "")),
        ("block", f"{receipt.height} (index {receipt.index}, {fmt_time(header_time_ms)})"),
    ]
    for event in receipt.events:
        attrs = ", ".join(
            f"{k}={short(v, 24) if isinstance(v, bytes) else v}" for k, v in event.attrs.items()
        )
        rows.append(("event", f"{event.type} {attrs}"))
    return _kv_table(rows)


def kv(rows: Iterable[tuple[str, str]]) -> Table:
    return _kv_table(rows)
