"""``shipment watch``: new custody and customs events of chosen shipments, as they commit.

A signed ``/v1/events`` subscription (:class:`cli.block_feed.BlockFeed`) says
when a block commits; what is printed comes from verified reads at that block:
the watched shipments' records (a proven-complete search, or each ID's proven
record), and, for each whose history grew, its whole history verified
(:func:`cli.shipment_cmd.provenance_of`), printing the entries after the last
one shown. Nothing is printed from the event frames themselves. Because the
watch compares proven history lengths, a reconnect (or a queue that dropped old
heights) loses nothing and repeats nothing: it resumes from the last state seen.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from cli.block_feed import RESYNC, BlockFeed
from cli.output import console, fail, print_json_line, record_json
from cli.render import describe_event, fmt_time
from cli.shipment_find import search_page
from cli.verified_reads import Reads
from contracts import state_keys as sk
from contracts.shipment_records import Shipment, ShipmentEvent
from contracts.shipment_search import ShipmentFilter
from lightclient.records import verify_state_view
from lightclient.search import Paging

CUSTODY_CUSTOMS = frozenset({"custody_offered", "custody_transferred", "customs_decision"})
MAX_WATCHED = 1000
PAGE = 1000


@dataclass
class Watch:
    """What is watched, what has been shown, and how to print."""

    reads: Reads
    ids: tuple[str, ...]
    search: ShipmentFilter
    every_event: bool
    as_json: bool
    seen: dict[str, int] = field(default_factory=dict)  # shipment id -> history entries shown
    shown: int = 0

    def records(self, height: int | None) -> tuple[int, list[Shipment]]:
        """The watched shipments, proven at ``height`` (None: the latest), and that height."""
        if self.ids:
            return self._by_id(height)
        page = search_page(self.reads, self.search, Paging(0, PAGE), height)
        if page.view.page.count.next_after is not None:
            fail(f"over {MAX_WATCHED} shipments match: narrow the search to watch it")
        return page.height, list(page.view.found)

    def _by_id(self, height: int | None) -> tuple[int, list[Shipment]]:
        out: list[Shipment] = []
        at = height
        for shipment_id in self.ids:
            at, record = self._record(shipment_id, at)  # every id from the same state
            out.append(record)
        assert at is not None
        return at, out

    def _record(self, shipment_id: str, height: int | None) -> tuple[int, Shipment]:
        key = sk.shipment_key(shipment_id)
        answer = self.reads.client.get(f"/v1/state/{key.hex()}", {"height": height}, signed=True)
        verified = self.reads.accept(
            lambda: verify_state_view(answer, self.reads.genesis, key),
            self.reads.now_or_at(height),
        )
        if verified.view.value is None:
            fail(f"no shipment {shipment_id} exists (proven at height {verified.height})")
        return verified.height, Shipment.from_obj(verified.view.value)


def baseline(watch: Watch) -> int:
    """Remember where every watched shipment's history stands now; the height read."""
    height, records = watch.records(None)
    watch.seen = {s.id: s.history_len for s in records}
    return height


def catch_up(watch: Watch, height: int | None, provenance: Provenance) -> int:
    """Print every entry committed since the last look; the height now read."""
    at, records = watch.records(height)
    for s in records:
        before = watch.seen.get(s.id, 0)
        if s.history_len <= before:
            continue
        for entry in provenance(s.id, at)[before:]:
            if watch.every_event or entry.event in CUSTODY_CUSTOMS:
                show(watch, s.id, entry, at)
        watch.seen[s.id] = s.history_len
    return at


Provenance = Callable[[str, int], tuple[ShipmentEvent, ...]]


def show(watch: Watch, shipment_id: str, e: ShipmentEvent, verified_at: int) -> None:
    watch.shown += 1
    if watch.as_json:
        print_json_line({"shipment": shipment_id, "verified_at": verified_at,
                         "entry": record_json(e)})  # fmt: skip
        return
    place = f" at {e.place}" if e.place else ""
    console.print(
        f"{fmt_time(e.time_ms)}  {shipment_id} #{e.seq}  {describe_event(e)}{place} "
        f"by {e.actor_org}  (height {e.height}; ✔ verified at height {verified_at})",
        highlight=False,
    )


def follow(watch: Watch, feed: BlockFeed, provenance: Provenance, count: int | None) -> None:
    """Print as blocks commit until Ctrl-C (or ``count`` entries were shown)."""
    last = baseline(watch)
    while count is None or watch.shown < count:
        try:
            height = feed.heights.get(timeout=1.0)
        except queue.Empty:
            continue
        if height != RESYNC and height <= last:
            continue  # already read (a later height was read meanwhile)
        last = catch_up(watch, None if height == RESYNC else height, provenance)
