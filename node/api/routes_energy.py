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
from contracts.energy_records import Order, Trade
from contracts.read_rules import Reader, may_read
from contracts.search_buckets import TRADE_ACCOUNT
from ledger.encoding import Value
from ledger.genesis import ORG_ID_PATTERN
from node.api.access import authenticated_reader, deny, reader_of
from node.api.auth import is_signed
from node.api.errors import APIError
from node.api.params import MAX_INT, parse_uint, path_id, query_limit, query_uint
from node.api.proven import ProvenState
from node.api.render import render

routes = web.RouteTableDef()


@routes.get("/v1/energy/accounts/{org}")
async def account(request: web.Request) -> web.StreamResponse:
    """Balances (absent record = all zero, proven absent) and one page of the account's
    trades, oldest first, proven complete (``after``: the next page's first slot; the
    ``interval`` filter is applied by the client to the page, docs/api.md)."""
    org_id = path_id(request, "org", ORG_ID_PATTERN.match, "an organisation id")
    start = query_uint(request, "after", hi=MAX_INT) or 0
    limit = query_limit(request)
    state = ProvenState.of_request(request)
    if queries.get_organisation(state, org_id) is None:
        raise APIError(404, "not_found", f"organisation {org_id!r} does not exist")
    balances = queries.get_energy_account(state, org_id)
    reader, signed = await reader_of(request)
    if not may_read("energy_account", balances, reader):
        raise deny(f"the energy account of {org_id!r}", signed)
    trades = state.page(TRADE_ACCOUNT.bucket(org_id), start, limit, lambda _key: True)
    return render(
        request,
        state.answer(
            org=org_id,
            balances=balances.to_obj(),
            account=state.item(sk.energy_account_key(org_id)),
            trades=trades,
        ),
    )


@routes.get("/v1/energy/market/{interval}")
async def market(request: web.Request) -> web.StreamResponse:
    """The order book and clearing of the interval starting at ``interval`` (ms).

    Every order the proven book lists comes in the book's order, and every trade
    ``0 .. trade_count - 1``: whole to a reader the rules allow, else only its key
    marked withheld (no value hash: an order's few fields could be guessed from
    one). The proven book names them all, so the answer is complete for every reader.
    """
    interval = parse_uint(request.match_info["interval"], "interval", hi=MAX_INT)
    state = ProvenState.of_request(request)
    book = queries.get_market(state, interval)
    reader, signer = await authenticated_reader(request)
    if not may_read("market", book, reader) or signer is None:
        raise deny("the energy market", is_signed(request.headers))
    by_id = {o.id: o for o in (*book.offers, *book.bids)}
    order_ids = sorted(by_id, key=lambda oid: by_id[oid].seq)
    orders = [_shown(state, by_id[oid], "energy_order", reader) for oid in order_ids]
    trades = [_shown(state, t, "trade", reader) for t in book.trades]
    return render(
        request,
        state.answer(
            interval_start_ms=interval,
            status=book.status,
            clearing=None if book.clearing is None else book.clearing.to_obj(),
            market=state.item(sk.market_key(interval)),
            orders=orders,
            trades=trades,
            reader=state.item(sk.member_key(signer)),
        ),
    )


def _shown(state: ProvenState, record: Order | Trade, kind: str, reader: Reader) -> Value:
    """``record``'s proven item, or its key marked withheld when ``reader`` may not see it."""
    if may_read(kind, record, reader):
        return state.item(record.key)
    return {"key": record.key, "withheld": True}
