"""Shipment search results: every listed record is proven and matches every filter."""

from __future__ import annotations

from contracts.shipment_records import Shipment
from contracts.shipment_search import matches_search
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed


def verify_search(
    answer: Value,
    genesis: Genesis,
    *,
    container: str | None = None,
    party: str | None = None,
    status: str | None = None,
) -> tuple[CertifiedHeader, list[Shipment]]:
    """Every listed shipment is proven and matches every filter given."""
    certified = verify_certified(answer, genesis)
    items = answer_field(answer, "shipments", "the answer")
    if not isinstance(items, list):
        raise VerificationError("the search answer is malformed")
    out = []
    for item in items:
        key = answer_field(item, "key", "a search result")
        if not isinstance(key, bytes) or not key.startswith(b"shipment/") or key.count(b"/") != 1:
            raise VerificationError(f"a search result is not a shipment record: {key!r}")
        record = require_typed(item, certified.header, key, Shipment)
        if not matches_search(record, container=container, party=party, status=status):
            raise VerificationError(
                f"shipment {record.id!r} does not match the search, yet it was listed"
            )
        out.append(record)
    return certified, out
