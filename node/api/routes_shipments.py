"""Shipments: one consignment with its full proven provenance, and searches.

Shipment data is commercial: only its parties, organisations that held it or
were offered custody, and the customs, port and auditor roles may read it
(:mod:`contracts.read_rules`), so every request here must be signed.
"""

from __future__ import annotations

import re

from aiohttp import web

from contracts import codes, queries
from contracts import state_keys as sk
from contracts.epcis import epcis_document
from contracts.read_rules import may_know_absent, may_read
from contracts.shipment_records import Shipment, ShipmentEvent
from contracts.shipment_search import SEARCH_STATUSES, ShipmentFilter
from ledger.encoding import Value
from ledger.genesis import ORG_ID_PATTERN
from node.api.access import authenticated_reader, deny, reader_of
from node.api.auth import is_signed
from node.api.context import api_state
from node.api.errors import APIError
from node.api.params import MAX_INT, malformed, path_id, query_limit, query_text, query_uint
from node.api.proven import ProvenState
from node.api.render import render

routes = web.RouteTableDef()


@routes.get("/v1/shipments/{id}")
async def shipment(request: web.Request) -> web.StreamResponse:
    """The record, every provenance entry, and the proof that the history ends there."""
    shipment_id = path_id(request, "id", codes.is_record_id, "a shipment id")
    state = ProvenState.of_request(request)
    record = await _readable_shipment(request, state, shipment_id)
    keys = queries.shipment_proof_keys(state, shipment_id)
    end = sk.shipment_history_key(shipment_id, record.history_len)
    history = [state.item(k) for k in keys[1:]]
    return render(
        request,
        state.answer(
            id=shipment_id,
            shipment=state.item(keys[0]),
            history=history,
            history_end=state.item(end),
            history_tx_proofs=_history_tx_proofs(
                request, state, queries.get_shipment_history(state, shipment_id)
            ),
        ),
    )


@routes.get("/v1/shipments/{id}/epcis")
async def shipment_epcis(request: web.Request) -> web.StreamResponse:
    """The shipment's history as a GS1 EPCIS 2.0 ``EPCISDocument`` (JSON-LD), for the
    same readers as the record. It carries no proofs: each event names its transaction
    hash and block height, which a receiver checks against a proof bundle."""
    shipment_id = path_id(request, "id", codes.is_record_id, "a shipment id")
    state = ProvenState.of_request(request)
    record = await _readable_shipment(request, state, shipment_id)
    history = queries.get_shipment_history(state, shipment_id)
    document = epcis_document(record, history, state.certified.header.time_ms)
    return web.json_response(document, content_type="application/ld+json")


async def _readable_shipment(
    request: web.Request, state: ProvenState, shipment_id: str
) -> Shipment:
    """The shipment, if the request's reader may read it: refused alike whether it is
    another party's or does not exist, unless the reader may know it is absent."""
    record = queries.get_shipment(state, shipment_id)
    reader, signed = await reader_of(request)
    if record is None:
        # the same refusal as for another party's shipment: no oracle for which ids exist
        if not may_know_absent("shipment", sk.shipment_key(shipment_id), reader):
            raise deny(f"shipment {shipment_id!r}", signed)
        raise APIError(404, "not_found", f"shipment {shipment_id!r} does not exist")
    if not may_read("shipment", record, reader):
        raise deny(f"shipment {shipment_id!r}", signed)
    return record


def _history_tx_proofs(
    request: web.Request, state: ProvenState, history: list[ShipmentEvent]
) -> list[Value]:
    """Per history entry, its transaction's inclusion proof in the answered header's log.

    One certified log root then proves every entry's transaction was committed, so a
    client checks one certificate instead of one per height (docs/audit.md).
    """
    node = api_state(request).node
    size = state.certified.header.log_size
    proofs: list[Value] = []
    for entry in history:
        proof = node.queries.tx_inclusion(entry.tx_hash, size)
        if proof is None:  # cannot happen for committed history; omit rather than lie
            return []
        proofs.append(proof.to_obj())
    return proofs


@routes.get("/v1/shipments")
async def search(request: web.Request) -> web.StreamResponse:
    """Shipments by container, party, stage/customs status, HS code, port and/or
    declaration day, proven complete.

    The answer is one page of the smallest given filter's bucket in state
    (:meth:`ProvenState.page`): every slot from ``after`` on, each with its
    member, or redacted when the caller may not read that shipment. Later pages
    pass ``after=<next_after>`` and the first page's ``height``.
    """
    filters = _search_of(request)
    start = query_uint(request, "after", hi=MAX_INT) or 0
    limit = query_limit(request)
    reader, signer = await authenticated_reader(request)
    if reader.org is None or signer is None:
        raise deny("shipment data", is_signed(request.headers))
    state = ProvenState.of_request(request)
    bucket = queries.shipment_bucket(state, filters)

    def readable(record_key: bytes) -> bool:
        record = queries.get_shipment(state, record_key.decode().split("/", 1)[1])
        return record is not None and may_read("shipment", record, reader)

    page = state.page(bucket, start, limit, readable)
    # the signer's member record: what it may read decides what may be withheld from it
    return render(request, state.answer(**page, reader=state.item(sk.member_key(signer))))


HS_SEARCH_PATTERN = re.compile(r"^[0-9]{4,10}$")
DAY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _search_of(request: web.Request) -> ShipmentFilter:
    """The search's filters from the query (at least one)."""
    status = query_text(request, "status", max_len=32)
    if status is not None and status not in SEARCH_STATUSES:
        raise malformed(f"status must be one of {sorted(SEARCH_STATUSES)}")
    search = ShipmentFilter(
        container=query_text(request, "container", max_len=11, pattern=codes.CONTAINER_PATTERN),
        party=query_text(request, "party", max_len=64, pattern=ORG_ID_PATTERN),
        status=status,
        hs=query_text(request, "hs", max_len=10, pattern=HS_SEARCH_PATTERN),
        port=query_text(request, "port", max_len=5, pattern=codes.UNLOCODE_PATTERN),
        day=query_text(request, "day", max_len=10, pattern=DAY_PATTERN),
    )
    if not any(search):
        raise malformed("give at least one of container, party, status, hs, port, day")
    return search
