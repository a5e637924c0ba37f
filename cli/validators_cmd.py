"""``cityledger validators``: the verified validator set at a height, and its history.

The history is the chain of certified set changes from genesis, each checked by the set
before it (:mod:`lightclient.validator_history`, cached by :mod:`cli.validator_cache`);
the set shown is the one it puts at the height, and the node's own claim must agree."""

from __future__ import annotations

import click
from rich.table import Table

from cli.client import NodeClient, genesis_option, node_option
from cli.options import height_option, json_option
from cli.output import console, fail, print_json
from cli.render import short
from cli.validator_cache import fetch_history
from ledger.genesis import Genesis
from ledger.validators import ValidatorSet
from lightclient.errors import VerificationError


@click.command("validators")
@node_option()
@genesis_option()
@height_option("The height whose set to show (default: the next block's).")
@json_option()
def validators(node: str, genesis_path: str, height: int | None, as_json: bool) -> None:
    """The validator set in force at a height, verified from the genesis file through the
    certified chain of set changes, and that chain."""
    genesis = Genesis.load(genesis_path)
    client = NodeClient(node)
    try:
        history = fetch_history(client, genesis)
        answer = client.get("/v1/validators", {} if height is None else {"height": height})
    except VerificationError as exc:
        fail(f"not verified: {exc}")
    at = answer.get("height")
    if not isinstance(at, int):
        fail("not verified: the node's answer names no height")
    vs = history.at(at)
    if answer.get("hash") != vs.hash:
        fail(f"not verified: the node names another set at height {at} than its history proves")
    if as_json:
        print_json(_json(at, vs, history.changes))
        return
    console.print(_table(f"validators at height {at} (set {short(vs.hash, 16)})", vs))
    console.print(f"[green]verified[/] from the genesis file through {len(history.changes)} "
                  "certified set change(s)")  # fmt: skip
    for change in history.changes:
        console.print(
            f"  from height {change.height}: {len(change.validators)} validators, power "
            f"{change.validators.total_power}, set {short(change.validators.hash, 16)} "
            f"(certified at height {change.header.height})"
        )


def _table(title: str, vs: ValidatorSet) -> Table:
    table = Table(title=title)
    for name in ("name", "power", "public key"):
        table.add_column(name)
    for v in vs.validators:
        table.add_row(v.name, str(v.power), v.public_key.hex())
    return table


def _json(at: int, vs: ValidatorSet, changes: tuple[object, ...]) -> dict[str, object]:
    from lightclient.validator_history import SetChange

    return {
        "height": at,
        "hash": vs.hash.hex(),
        "validators": [
            {"name": v.name, "power": v.power, "public_key": v.public_key.hex()}
            for v in vs.validators
        ],
        "history": [
            {
                "from_height": c.height,
                "certified_at": c.header.height,
                "hash": c.validators.hash.hex(),
                "validators": [v.name for v in c.validators.validators],
            }
            for c in changes
            if isinstance(c, SetChange)
        ],
        "verified": True,
    }
