"""Energy: an organisation's account (credits, money, trades) and an interval's market.

Accounts are readable by their owner and the energy regulator and auditor
roles; a market by prosumers, the regulator and auditors, where each order
and trade in it is shown only to those the read rules allow (its own
organisation, the regulator, auditors).
"""

from __future__ import annotations

from aiohttp import web

from contracts import queries
from contracts import state_keys as sk
from contracts.read_rules import may_read
from ledger.genesis import ORG_ID_PATTERN
from node.api.access import deny, reader_of
from node.api.context import api_state
from node.api.params import MAX_INT, parse_uint, path_id, query_limit, query_uint
from node.api.proven import ProvenState
from node.api.render import APIError, render

routes = web.RouteTableDef()


@routes.get("/v1/energy/accounts/{org}")
async def account(request: web.Request) -> web.StreamResponse:
    """Balances (absent record = all zero, proven absent) and trades, newest interval filter."""
    org_id = path_id(request, "org", ORG_ID_PATTERN.match, "an organisation id")
    interval = query_uint(request, "interval", hi=MAX_INT)
    limit = query_limit(request)
    state = ProvenState.of_request(request)
    if queries.get_organisation(state, org_id) is None:
        raise APIError(404, "not_found", f"organisation {org_id!r} does not exist")
    balances = queries.get_energy_account(state, org_id)
    reader, signed = await reader_of(request)
    if not may_read("energy_account", balances, reader):
        raise deny(f"the energy account of {org_id!r}", signed)
    trades = api_state(request).node.queries.trades_of(state, org_id, interval, limit)
    return render(
        request,
        state.answer(
            org=org_id,
            balances=balances.to_obj(),
            account=state.item(sk.energy_account_key(org_id)),
            trades=[state.item(t.key) for t in trades],
        ),
    )


@routes.get("/v1/energy/market/{interval}")
async def market(request: web.Request) -> web.StreamResponse:
    """The order book and clearing of the interval starting at ``interval`` (ms)."""
    interval = parse_uint(request.match_info["interval"], "interval", hi=MAX_INT)
    state = ProvenState.of_request(request)
    book = queries.get_market(state, interval)
    reader, signed = await reader_of(request)
    if not may_read("market", book, reader):
        raise deny("the energy market", signed)
    orders = [o for o in (*book.offers, *book.bids) if may_read("energy_order", o, reader)]
    trades = [t for t in book.trades if may_read("trade", t, reader)]
    return render(
        request,
        state.answer(
            interval_start_ms=interval,
            status=book.status,
            clearing=None if book.clearing is None else book.clearing.to_obj(),
            market=state.item(sk.market_key(interval)),
            orders=[state.item(o.key) for o in orders],
            trades=[state.item(t.key) for t in trades],
        ),
    )
