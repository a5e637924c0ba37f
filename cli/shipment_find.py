"""``shipment find``: one proven page of one bucket, or a date range made of day buckets.

A search by container, party, status, HS code or port is one page of the
smallest of their buckets (:func:`cli.verified_reads.report_search`); a date
range given with any of them filters that page's proven records here by
declaration time. A search by dates alone is the union of the range's day
buckets (``shipment-day``, one per UTC day): every day's bucket is read whole,
all from the height of the first answer, each proven complete, and the output
says how many days were checked. A range is at most :data:`MAX_DAYS` days.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import click

from cli.inputs import CONTAINERS
from cli.output import fail, print_json, record_json
from cli.render import SHIPMENTS
from cli.verified_reads import Reads, freshness_json, freshness_text
from contracts import codes
from contracts.shipment_records import CUSTOMS_STATUSES, STAGES, Shipment
from contracts.shipment_search import ShipmentFilter, day_of
from lightclient.answers import Verified
from lightclient.search import Paging, SearchView, verify_shipment_search

MAX_DAYS = 366
MAX_RECORDS = 10_000  # a range holding more: narrow it, or add a filter
PAGE = 1000
STATUSES = (*STAGES, *CUSTOMS_STATUSES)  # what --status takes, in a shipment's order


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    def days(self) -> list[str]:
        n = (self.last - self.first).days + 1
        return [(self.first + timedelta(d)).isoformat() for d in range(n)]

    def holds(self, s: Shipment) -> bool:
        return self.first.isoformat() <= day_of(s.declared_time_ms) <= self.last.isoformat()

    def describe(self) -> str:
        return f"{self.first.isoformat()} .. {self.last.isoformat()} (UTC days of declaration)"


def date_range(first: str | None, last: str | None) -> DateRange | None:
    """``--from``/``--to`` (``YYYY-MM-DD``, both inclusive; one alone is that day)."""
    if first is None and last is None:
        return None
    try:
        a = date.fromisoformat(first or str(last))
        b = date.fromisoformat(last or str(first))
    except ValueError:
        fail("--from and --to are days: YYYY-MM-DD (UTC)")
    if b < a:
        fail(f"--to {b} is before --from {a}")
    if (b - a).days + 1 > MAX_DAYS:
        fail(f"a date range is at most {MAX_DAYS} days; {a} .. {b} is {(b - a).days + 1}")
    return DateRange(a, b)


def hs_search(code: str | None) -> str | None:
    if code is None:
        return None
    if not code.isdigit() or not 4 <= len(code) <= 10:
        fail(
            f"--hs {code}: 4 to 10 digits (an HS heading or finer); searches are indexed by "
            "heading, so a 2-digit chapter is not searchable"
        )
    return code


def port_search(place: str | None) -> str | None:
    if place is None:
        return None
    place = place.strip().upper()
    if not codes.is_unlocode(place):
        fail(f"--port {place}: not a UN/LOCODE (2-letter country and 3 characters, e.g. KRPUS)")
    return place


def filter_options() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--container``, ``--party``, ``--status``, ``--hs`` and ``--port`` of a shipment
    search (``shipment find`` and ``shipment watch``), each checked here, passed to the
    command as ``search`` (a :class:`ShipmentFilter`: its fields are None where not given)."""
    options = (
        click.option(
            "--container",
            default=None,
            callback=CONTAINERS,
            help="ISO 6346 container number (case and check digit checked).",
        ),
        click.option(
            "--party", default=None, help="Organisation id (consignor, consignee, holder …)."
        ),
        click.option("--status", default=None, help=", ".join(STATUSES) + "."),
        click.option("--hs", default=None, help="HS code, 4 to 10 digits: goods lines under it."),
        click.option("--port", default=None, help="UN/LOCODE: the origin or the destination."),
    )

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(
            *args: Any,
            container: str | None,
            party: str | None,
            status: str | None,
            hs: str | None,
            port: str | None,
            **kw: Any,
        ) -> Any:
            search = ShipmentFilter(container, party, status, hs_search(hs), port_search(port))
            return command(*args, search=search, **kw)

        with_options: Callable[..., Any] = run
        for option in reversed(options):
            with_options = option(with_options)
        return with_options

    return wrap


def search_page(
    reads: Reads, search: ShipmentFilter, paging: Paging, height: int | None
) -> Verified[SearchView[Shipment]]:
    """One verified page of ``search`` (at ``height``, or now)."""
    params = {**search._asdict(), "limit": paging.limit, "after": paging.start or None}
    answer = reads.client.get("/v1/shipments", {**params, "height": height}, signed=True)
    return reads.accept(
        lambda: verify_shipment_search(answer, reads.genesis, search, paging, reads.signer()),
        reads.now_or_at(height),
    )


def read_whole(
    reads: Reads, search: ShipmentFilter, height: int | None
) -> list[Verified[SearchView[Shipment]]]:
    """Every page of ``search`` (at ``height``; None: now, the later pages at the first
    one's height): the bucket it walks read whole, each page proven complete."""
    pages = [search_page(reads, search, Paging(0, PAGE), height)]
    while (after := pages[-1].view.page.count.next_after) is not None:
        if after >= MAX_RECORDS:
            fail(f"over {MAX_RECORDS} shipments to read for one search: add a filter")
        pages.append(search_page(reads, search, Paging(after, PAGE), pages[0].height))
    return pages


def find_by_days(reads: Reads, days: DateRange, height: int | None, fmt: str) -> None:
    """Every shipment declared in ``days``: each day's bucket read whole at one height."""
    found: list[Shipment] = []
    withheld, first = 0, None
    for day in days.days():
        for page in read_whole(reads, ShipmentFilter(day=day), height):
            first = first or page
            height = page.height
            found.extend(page.view.found)
            withheld += page.view.page.withheld
        if len(found) > MAX_RECORDS:
            fail(f"over {MAX_RECORDS} shipments in {days.describe()}: narrow the range")
    assert first is not None
    _report_days(first, days, found, withheld, fmt)


def _report_days(
    verified: Verified[Any], days: DateRange, found: list[Shipment], withheld: int, fmt: str
) -> None:
    n = len(days.days())
    if fmt == "json":
        shipments = [record_json(s) for s in found]
        print_json(
            {**freshness_json(verified), "complete": True, "days": n, "withheld": withheld}
            | {"shipments": shipments}
        )
        return
    notes = SHIPMENTS.emit(found, fmt)
    text = f"{len(found)} shipments declared {days.describe()}, complete: all {n} day buckets"
    text += " proven whole at one height"
    if withheld:
        text += f"; {withheld} more this key may not read (counted, not shown)"
    notes.print(text)
    notes.print(freshness_text(verified))
