"""Shipment search results: every listed record is proven, matches every filter, and
the results come in the index's order (ids strictly increasing: nothing repeated or
reordered). Whether a matching record was left out is not proven (docs/cli.md)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.shipment_records import Shipment
from contracts.shipment_search import matches_search
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed


@dataclass(frozen=True, slots=True)
class SearchView:
    """The listed shipments, each proven at one certified height."""

    certified: CertifiedHeader
    shipments: tuple[Shipment, ...]

    def histories(self) -> tuple[()]:
        """A search lists records, not their histories (``shipment provenance`` shows one)."""
        return ()


def verify_search(
    answer: Value,
    genesis: Genesis,
    *,
    container: str | None = None,
    party: str | None = None,
    status: str | None = None,
) -> SearchView:
    """Every listed shipment is proven, matches every filter given, in increasing id order."""
    certified = verify_certified(answer, genesis)
    items = answer_field(answer, "shipments", "the answer")
    if not isinstance(items, list):
        raise VerificationError("the search answer is malformed")
    out: list[Shipment] = []
    for item in items:
        key = answer_field(item, "key", "a search result")
        if not isinstance(key, bytes) or not key.startswith(b"shipment/") or key.count(b"/") != 1:
            raise VerificationError(f"a search result is not a shipment record: {key!r}")
        record = require_typed(item, certified.header, key, Shipment)
        if not matches_search(record, container=container, party=party, status=status):
            raise VerificationError(
                f"shipment {record.id!r} does not match the search, yet it was listed"
            )
        if out and record.id.encode() <= out[-1].id.encode():
            raise VerificationError(
                f"shipment {record.id!r} is listed after {out[-1].id!r}: results repeated or "
                "out of the index's order"
            )
        out.append(record)
    return SearchView(certified, tuple(out))
