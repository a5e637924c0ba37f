"""The one test of whether a shipment matches a search by container, party and status.

The node's search (``GET /v1/shipments``) lists only records that pass it, and a
client checking such an answer applies it again to each proven record.
"""

from __future__ import annotations

from typing import NamedTuple

from contracts.shipment_records import CUSTOMS_STATUSES, STAGES, Shipment

SEARCH_STATUSES = frozenset(STAGES) | frozenset(CUSTOMS_STATUSES)


class ShipmentFilter(NamedTuple):
    """A search: any of container, party, status (a stage or a customs status)."""

    container: str | None = None
    party: str | None = None
    status: str | None = None


def matches_search(
    shipment: Shipment,
    *,
    container: str | None = None,
    party: str | None = None,
    status: str | None = None,
) -> bool:
    """Every filter given holds: ``container`` is among its containers, ``party`` is a
    party or has held it, ``status`` is its stage or customs status."""
    if container is not None and container not in shipment.containers:
        return False
    if party is not None and party not in shipment.involved():
        return False
    return status is None or status in (shipment.stage, shipment.customs_status)
