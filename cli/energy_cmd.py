"""``cityledger energy account|market``: balances, trades and an interval's market, checked whole.

``account`` shows an organisation's proven balances and one page of its trades,
proven complete from the account's search bucket (``--interval`` keeps one
interval's trades of that page); ``market`` shows an interval's proven order
book with every order and trade it names, those this key may not read counted
as withheld. Energy data is not public: requests are signed with ``--key``.
Every answer goes through :class:`cli.verified_reads.Reads`.
"""

from __future__ import annotations

import click

from cli.output import console, err_console, print_json, record_json
from cli.read_source import PageAsk, Source, paging_options, read_at_options, source_options
from cli.tabular import Column, Listing, format_option
from cli.verified_reads import (
    freshness_json,
    freshness_text,
    report_search,
)
from contracts.energy_records import Trade
from lightclient.energy import verify_account, verify_market


@click.group()
def energy() -> None:
    """Energy accounts and markets, checked against the genesis validators."""


@energy.command()
@click.argument("org_id", metavar="ORG")
@click.option("--interval", type=click.IntRange(min=0), default=None, help="Interval start (ms).")
@paging_options()
@source_options("Member key that signs the read (the owner, or the energy regulator).")
@format_option()
def account(
    org_id: str,
    interval: int | None,
    page: PageAsk,
    source: Source,
    fmt: str,
) -> None:
    """ORG's balances and its trades (oldest first), proven complete."""
    reads = source.reads()
    paging = page.paging()
    answer = reads.client.get(f"/v1/energy/accounts/{org_id}", page.params(), signed=True)
    verified = reads.accept(
        lambda: verify_account(answer, reads.genesis, org_id, interval, paging),
        reads.now_or_at(page.height),
    )
    view = verified.view
    if fmt != "json":
        (err_console if fmt == "csv" else console).print(
            f"account {org_id}: {view.account.to_obj()}"
        )
    account_json = {"org": org_id, "account": record_json(view.account)}
    trades = view.trades
    report_search(verified, trades, "trade", TRADES, fmt, **account_json)


@energy.command()
@click.argument("interval", type=click.IntRange(min=0))
@read_at_options("Member key that signs the read (a prosumer, or the energy regulator).")
@format_option()
def market(interval: int, height: int | None, source: Source, fmt: str) -> None:
    """The market of the interval starting at INTERVAL (ms): every order and trade."""
    reads = source.reads()
    answer = reads.client.get(f"/v1/energy/market/{interval}", {"height": height}, signed=True)
    verified = reads.accept(
        lambda: verify_market(answer, reads.genesis, interval, reads.signer()),
        reads.now_or_at(height),
    )
    view = verified.view
    orders = [o for o in view.orders if o is not None]
    trades = [t for t in view.trades if t is not None]
    withheld = len(view.orders) - len(orders) + len(view.trades) - len(trades)
    if fmt == "json":
        print_json({**freshness_json(verified), "complete": True, "status": view.book.status,
                    "orders": [record_json(o) for o in orders],
                    "trades": [record_json(t) for t in trades], "withheld": withheld})  # fmt: skip
        return
    notes = TRADES.emit(trades, fmt)
    notes.print(
        f"market {interval} ({view.book.status}): all {len(view.orders)} orders and "
        f"{len(view.trades)} trades the proven book names, complete; {withheld} of them "
        "this key may not read (counted, not shown)"
    )
    notes.print(freshness_text(verified))


TRADES: Listing[Trade] = Listing(
    [
        Column("interval_start_ms", "interval", lambda t: str(t.interval_start_ms)),
        Column("n", "n", lambda t: str(t.n), right=True),
        Column("seller", "seller", lambda t: t.seller),
        Column("buyer", "buyer", lambda t: t.buyer),
        Column("quantity_wh", "Wh", lambda t: str(t.quantity_wh), right=True),
        Column("price_per_kwh", "price/kWh", lambda t: str(t.price_per_kwh), right=True),
        Column("amount", "amount", lambda t: str(t.amount), right=True),
    ]
)
