"""Energy answers checked whole: an account with its trades, an interval's market.

* ``GET /v1/energy/accounts/{org}``: the account record (proven, or proven absent:
  all zero) and one page of the account's trades from its search bucket, checked
  complete (:func:`lightclient.search.verify_trades`);
* ``GET /v1/energy/market/{interval}``: the proven book names every order (in
  placement order) and its clearing the trade count; the answer must hold each
  of them, in that order, proven, or marked withheld for a reader the rules do
  not let see it. The count is checked in :func:`lightclient.answers.verify_answer`
  like every search page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from contracts import state_keys as sk
from contracts.energy_records import Account, MarketBook, Order, Trade
from contracts.read_rules import ROLE_READERS
from ledger.block import BlockHeader
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import PageCount
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed, verify_item
from lightclient.search import Paging, SearchView, verify_reader, verify_trades

L = TypeVar("L", Order, Trade)


@dataclass(frozen=True, slots=True)
class AccountView:
    """An organisation's proven balances and one complete page of its trades."""

    certified: CertifiedHeader
    account: Account
    trades: SearchView[Trade]

    def histories(self) -> tuple[PageCount]:
        return self.trades.histories()


def verify_account(
    answer: Value, genesis: Genesis, org_id: str, interval: int | None, paging: Paging
) -> AccountView:
    trades = verify_trades(answer, genesis, org_id, interval, paging)
    header = trades.certified.header
    item = answer_field(answer, "account", "the answer")
    if verify_item(item, header, sk.energy_account_key(org_id)) is None:
        account = Account.empty(org_id)
    else:
        account = require_typed(item, header, sk.energy_account_key(org_id), Account)
    return AccountView(trades.certified, account, trades)


@dataclass(frozen=True, slots=True)
class MarketView:
    """An interval's proven book, each order and trade it names (None: withheld)."""

    certified: CertifiedHeader
    book: MarketBook
    orders: tuple[Order | None, ...]
    trades: tuple[Trade | None, ...]
    listed: tuple[PageCount, PageCount]

    def histories(self) -> tuple[PageCount, PageCount]:
        return self.listed


def verify_market(answer: Value, genesis: Genesis, interval: int, reader_key: bytes) -> MarketView:
    """The market answer signed by ``reader_key``: the book, every order and trade it
    names; withheld ones only from a reader without the regulator's or auditor's role."""
    certified = verify_certified(answer, genesis)
    header = certified.header
    reader = verify_reader(answer, header, reader_key)
    may_withhold = reader.roles.isdisjoint(ROLE_READERS["trade"])
    key = sk.market_key(interval)
    item = answer_field(answer, "market", "the answer")
    if verify_item(item, header, key) is None:
        book = MarketBook.empty(interval)
    else:
        book = require_typed(item, header, key, MarketBook)
    order_keys = [sk.order_key(oid) for oid in book.orders]
    trade_count = 0 if book.clearing is None else book.clearing.trade_count
    trade_keys = [sk.trade_key(interval, n) for n in range(trade_count)]
    orders = _listed(answer_field(answer, "orders", "the answer"), header, order_keys, Order)
    trades = _listed(answer_field(answer, "trades", "the answer"), header, trade_keys, Trade)
    what = f"the market of interval {interval}"
    listed = (
        _count(f"{what}: orders", len(order_keys), orders, may_withhold),
        _count(f"{what}: trades", len(trade_keys), trades, may_withhold),
    )
    return MarketView(certified, book, tuple(orders), tuple(trades), listed)


def _count(what: str, total: int, listed: list[L | None], may_withhold: bool) -> PageCount:
    withheld = sum(1 for r in listed if r is None)
    return PageCount(what, total, 0, total, len(listed), withheld, may_withhold)


def _listed(items: Value, header: BlockHeader, keys: list[bytes], kind: type[L]) -> list[L | None]:
    """The records at ``keys`` in order (None: withheld); stops at the first missing one,
    so the count check names what is short."""
    if not isinstance(items, list):
        raise VerificationError(f"the {kind.__name__} list is malformed")
    out: list[L | None] = []
    for item, key in zip(items, keys, strict=False):
        if answer_field(item, "key", "a listed record") != key:
            raise VerificationError(
                f"{kind.__name__} {len(out)} is not the one the proven book names there "
                "(left out or reordered)"
            )
        if item.get("withheld") is True:
            out.append(None)
        else:
            out.append(require_typed(item, header, key, kind))
    if len(items) > len(keys):
        raise VerificationError(f"more {kind.__name__} records than the proven book names")
    return out
