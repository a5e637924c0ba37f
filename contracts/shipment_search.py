"""The one test of whether a shipment matches a search, and the buckets a search may walk.

The node's search (``GET /v1/shipments``) lists only records that pass it, and a
client checking such an answer applies it again to each proven record. Each
filter has its bucket family (:mod:`contracts.search_buckets`), filled where
shipments are declared or change:

* ``container``: an ISO 6346 number among its containers;
* ``party``: an organisation that is a party or has held it;
* ``status``: its stage or customs status;
* ``hs``: an HS code of 4 to 10 digits under which one of its goods lines falls
  (the line's code starts with it); the bucket is the heading, its first 4 digits;
* ``port``: a UN/LOCODE that is its origin or its destination;
* ``day``: the UTC day (``YYYY-MM-DD``) its declaration's event time falls on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from contracts import search_buckets as sb
from contracts.shipment_records import CUSTOMS_STATUSES, STAGES, Shipment

SEARCH_STATUSES = frozenset(STAGES) | frozenset(CUSTOMS_STATUSES)
HS_HEADING = 4  # digits of an HS code that name its bucket


class ShipmentFilter(NamedTuple):
    """A search: any of container, party, status (a stage or a customs status), HS code,
    port, declaration day."""

    container: str | None = None
    party: str | None = None
    status: str | None = None
    hs: str | None = None
    port: str | None = None
    day: str | None = None

    def buckets(self) -> list[sb.Bucket]:
        """The buckets of the filters given: a search may walk any one of them."""
        return [family.bucket(name) for family, name in self.bucket_names() if name]

    def bucket_names(self) -> list[tuple[sb.Family, str | None]]:
        return [
            (sb.SHIPMENT_CONTAINER, self.container),
            (sb.SHIPMENT_PARTY, self.party),
            (sb.SHIPMENT_STATUS, self.status),
            (sb.SHIPMENT_HS, None if self.hs is None else self.hs[:HS_HEADING]),
            (sb.SHIPMENT_PORT, self.port),
            (sb.SHIPMENT_DAY, self.day),
        ]


def day_of(time_ms: int) -> str:
    """The UTC day of ``time_ms`` as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def hs_headings(shipment: Shipment) -> list[str]:
    """The distinct HS headings (first 4 digits) of its goods lines, sorted."""
    return sorted({g.hs_code[:HS_HEADING] for g in shipment.goods})


def ports(shipment: Shipment) -> list[str]:
    return sorted({shipment.origin, shipment.destination})


def matches_search(shipment: Shipment, search: ShipmentFilter) -> bool:
    """Every filter given holds (see the module's list)."""
    checks = (
        (search.container, lambda c: c in shipment.containers),
        (search.party, lambda p: p in shipment.involved()),
        (search.status, lambda s: s in (shipment.stage, shipment.customs_status)),
        (search.hs, lambda h: any(g.hs_code.startswith(h) for g in shipment.goods)),
        (search.port, lambda p: p in (shipment.origin, shipment.destination)),
        (search.day, lambda d: day_of(shipment.declared_time_ms) == d),
    )
    return all(value is None or check(value) for value, check in checks)


def in_bucket(bucket: sb.Bucket, shipment: Shipment) -> bool:
    """Whether ``shipment`` belongs in ``bucket`` (a shipment family's bucket)."""
    field = {
        sb.SHIPMENT_CONTAINER.name: "container",
        sb.SHIPMENT_PARTY.name: "party",
        sb.SHIPMENT_STATUS.name: "status",
        sb.SHIPMENT_HS.name: "hs",
        sb.SHIPMENT_PORT.name: "port",
        sb.SHIPMENT_DAY.name: "day",
    }[bucket.family.name]
    return matches_search(shipment, ShipmentFilter(**{field: bucket.name}))
