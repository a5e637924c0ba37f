"""Shipment search results: every listed record is proven and matches every filter."""

from __future__ import annotations

from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_record


def verify_search(
    answer: Value,
    genesis: Genesis,
    *,
    container: str | None = None,
    party: str | None = None,
    status: str | None = None,
) -> tuple[CertifiedHeader, list[dict[str, Value]]]:
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
        record = require_record(item, certified.header, key)
        parties = {record["consignor"], record["consignee"], record["declarant"]}
        parties.update(record["holders"])
        if (
            (container is not None and container not in record["containers"])
            or (party is not None and party not in parties)
            or (status is not None and status not in (record["stage"], record["customs_status"]))
        ):
            raise VerificationError(
                f"shipment {record['id']!r} does not match the search, yet it was listed"
            )
        out.append(record)
    return certified, out
