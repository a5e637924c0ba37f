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
from rich.table import Table

from cli.client import genesis_option, node_option
from cli.keys_cmd import key_option
from cli.output import console, print_json, record_json
from cli.shipment_cmd import connect
from cli.verified_reads import (
    freshness_json,
    freshness_text,
    max_age_option,
    page_of,
    paging_options,
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
@node_option()
@genesis_option()
@key_option(help_text="Member key that signs the read (the owner, or the energy regulator).")
@max_age_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def account(
    org_id: str,
    interval: int | None,
    limit: int,
    after: int | None,
    height: int | None,
    node: str,
    genesis_path: str,
    key_path: str | None,
    max_age_s: float,
    as_json: bool,
) -> None:
    """ORG's balances and its trades (oldest first), proven complete."""
    reads = connect(node, genesis_path, key_path, max_age_s)
    paging = page_of(after, limit, height)
    params = {"limit": limit, "after": after, "height": height}
    answer = reads.client.get(f"/v1/energy/accounts/{org_id}", params, signed=True)
    verified = reads.accept(
        lambda: verify_account(answer, reads.genesis, org_id, interval, paging),
        reads.now_or_at(height),
    )
    view = verified.view
    if not as_json:
        console.print(f"account {org_id}: {view.account.to_obj()}")
    account_json = {"org": org_id, "account": record_json(view.account)}
    trades = view.trades
    report_search(verified, trades, "trade", lambda: _trades_table(trades.found), as_json,
                  **account_json)  # fmt: skip


@energy.command()
@click.argument("interval", type=click.IntRange(min=0))
@click.option("--height", type=click.IntRange(min=1), default=None, help="At this block.")
@node_option()
@genesis_option()
@key_option(help_text="Member key that signs the read (a prosumer, or the energy regulator).")
@max_age_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def market(
    interval: int,
    height: int | None,
    node: str,
    genesis_path: str,
    key_path: str | None,
    max_age_s: float,
    as_json: bool,
) -> None:
    """The market of the interval starting at INTERVAL (ms): every order and trade."""
    reads = connect(node, genesis_path, key_path, max_age_s)
    answer = reads.client.get(f"/v1/energy/market/{interval}", {"height": height}, signed=True)
    verified = reads.accept(
        lambda: verify_market(answer, reads.genesis, interval, reads.signer()),
        reads.now_or_at(height),
    )
    view = verified.view
    orders = [o for o in view.orders if o is not None]
    trades = [t for t in view.trades if t is not None]
    withheld = len(view.orders) - len(orders) + len(view.trades) - len(trades)
    if as_json:
        print_json({**freshness_json(verified), "complete": True, "status": view.book.status,
                    "orders": [record_json(o) for o in orders],
                    "trades": [record_json(t) for t in trades], "withheld": withheld})  # fmt: skip
        return
    if trades:
        console.print(_trades_table(trades))
    console.print(
        f"market {interval} ({view.book.status}): all {len(view.orders)} orders and "
        f"{len(view.trades)} trades the proven book names, complete; {withheld} of them "
        "this key may not read (counted, not shown)"
    )
    console.print(freshness_text(verified))


def _trades_table(trades: list[Trade] | tuple[Trade, ...]) -> Table:
    table = Table()
    for name in ("interval", "n", "seller", "buyer", "Wh", "price/kWh", "amount"):
        table.add_column(name)
    for t in trades:
        table.add_row(*(str(v) for v in (t.interval_start_ms, t.n, t.seller, t.buyer,
                                         t.quantity_wh, t.price_per_kwh, t.amount)))  # fmt: skip
    return table
