"""A lying node in front of every read command: each lie refused in one line, exit 1.

The chain is built in the past (an energy market six hours ago, two shipments and
two permits two hours ago), then one fresh block revokes permit P-0002 and adds a
milestone to S-0001: a node that answers from the old height hides exactly those.
One proxy forwards to the real API and tells the lie the test sets
(:class:`Liar`); with no lie it is honest and every command passes. Every search
(shipments, permits, an account's trades, a market's orders and trades) is
proven complete: dropping an item or a page, reordering, or another record's
proof is refused (the ``--- searches`` part below).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient
from ledger.encoding import Value
from ledger.keyfile import read_key_file
from lightclient.checkpoints import checkpoint_document
from tests.unit.cli import kit
from tests.unit.cli.kit import (
    CliNode,
    Served,
    build_journey,
    build_permit,
    build_trades,
    make_genesis,
    message,
    run,
)

PAST_MS = 2 * 3_600_000
MAX_AGE = ["--max-age", "1800"]  # the fresh block stays fresh for the module's run
Answer = dict[str, Value]
Change = Callable[[str, Answer], Answer]


class World(Served):
    """The served chain, the lying proxy in front of it, and what the lies serve."""

    def __init__(self, tmp: Path) -> None:
        real_now = kit.now_ms
        node = CliNode(genesis=make_genesis(real_now() - 3 * PAST_MS))
        self.interval = build_trades(node)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kit, "now_ms", lambda: real_now() - PAST_MS)
            for shipment in ("S-0001", "S-0002"):
                build_journey(node, shipment)
            build_permit(node, "P-0001")
            build_permit(node, "P-0002")
        self.old_height = node.chain.head().height
        self.issued_ms = node.chain.head().time_ms
        t = node.tx
        milestone = {"shipment_id": "S-0001", "event": "arrived", "place": "KRPUS",
                     "time_ms": real_now()}  # fmt: skip
        node.commit([t("clerk", "permit.revoke", {"permit_id": "P-0002", "reason": "fraud"}),
                     t("oceanic", "shipment.milestone", milestone)])  # fmt: skip
        self.head = node.chain.head().height
        super().__init__(node, tmp)
        self.client = NodeClient(self.server.url, key=read_key_file(self.keys["officer"]))
        self.energy = NodeClient(self.server.url, key=read_key_file(self.keys["wind-prosumer"]))
        self.checkpoint = str(tmp / "cp.json")
        cp_header, cp_cert = node.chain.header(5), node.chain.certificate(5)
        assert cp_header is not None and cp_cert is not None
        cp = checkpoint_document(cp_header, cp_cert, node.genesis.hash)
        Path(self.checkpoint).write_text(json.dumps(cp))
        self.checkpoint_log_size = cp_header.log_size

    def get(self, path: str, **params: Any) -> Answer:
        """An honest answer, straight from the node (what a lie replays)."""
        return self.client.get(path, params, signed=True)

    def stop(self) -> None:
        self.client.close()
        self.energy.close()
        super().stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("liars"))
    yield w
    w.stop()


def cli(world: World, *args: str, final: bool = False) -> Any:
    """``cityledger ARGS`` against the proxy (a final answer, a receipt, takes no --max-age)."""
    age = [] if final else MAX_AGE
    return run([*args, "--node", world.proxy.url, "--genesis", world.genesis, *age])


def signed(world: World, *args: str) -> Any:
    return cli(world, *args, "--key", world.keys["officer"])


def tx_hash(world: World) -> str:
    history = world.get("/v1/shipments/S-0001")["history"]
    return str(history[0]["record"]["tx_hash"].hex())


PAGE_2 = ("shipment", "find", "--party", "oceanic", "--limit", "1", "--after", "1")


def as_wind(world: World) -> tuple[str, str]:
    return ("--key", world.keys["wind-prosumer"])


COMMANDS: dict[str, Callable[[World], Any]] = {
    "shipment provenance": lambda w: signed(w, "shipment", "provenance", "S-0001"),
    "shipment find": lambda w: signed(w, "shipment", "find", "--party", "oceanic"),
    "permit show": lambda w: cli(w, "permit", "show", "P-0002"),
    "permit check": lambda w: cli(w, "permit", "check", "P-0002"),
    "permit check --at": lambda w: cli(w, "permit", "check", "P-0002", "--at", str(w.issued_ms)),
    "block latest": lambda w: cli(w, "block", "latest"),
    "audit checkpoint": lambda w: cli(w, "audit", "checkpoint"),
    "audit consistency": lambda w: cli(w, "audit", "consistency", w.checkpoint),
    "tx show": lambda w: cli(w, "tx", "show", tx_hash(w), "--key", w.keys["officer"], final=True),
    "proof export permit": lambda w: cli(w, "proof", "export", "permit", "P-0002"),
    "proof export shipment": lambda w: signed(w, "proof", "export", "shipment", "S-0001"),
    "shipment find --status": lambda w: signed(w, "shipment", "find", "--status", "cleared"),
    "shipment find page 2": lambda w: signed(w, *PAGE_2, "--height", str(w.head)),
    "permit list": lambda w: cli(w, "permit", "list", "--holder", "acme"),
    "energy account": lambda w: cli(w, "energy", "account", "wind-coop", *as_wind(w)),
    "energy market": lambda w: cli(w, "energy", "market", str(w.interval), *as_wind(w)),
    "org find": lambda w: cli(w, "org", "find", "o"),
    "shipment find --party-name": lambda w: signed(w, "shipment", "find", "--party-name", "ocean"),
}

HONEST_EXIT = {"permit check": 1}  # P-0002 is revoked now: NOT VALID, honestly


def refusal(world: World, command: str, change: Change) -> str:
    """Run ``command`` against the lie; the one line it was refused with."""
    world.liar.change = change
    try:
        result = COMMANDS[command](world)
    finally:
        world.liar.change = lambda _path, answer: answer
    lines = [line for line in message(result).splitlines() if "REFUSED" in line]
    assert result.exit_code == 1 and len(lines) == 1, message(result)
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_honest_answer_passes(world: World, command: str) -> None:
    result = COMMANDS[command](world)
    assert result.exit_code == HONEST_EXIT.get(command, 0), message(result)
    assert "REFUSED" not in message(result)


# --- a stale certified height ---------------------------------------------------------------


def _stale(world: World, path: str, **params: Any) -> Change:
    old = world.get(path, height=world.old_height, **params)
    return lambda p, answer: old if p == path else answer


STALE = {
    "shipment provenance": ("/v1/shipments/S-0001", {}),
    "shipment find": ("/v1/shipments", {"party": "oceanic"}),
    "permit show": ("/v1/permits/P-0002", {}),
    "permit check": ("/v1/permits/P-0002", {}),
    "proof export permit": ("/v1/permits/P-0002", {}),
    "proof export shipment": ("/v1/shipments/S-0001", {}),
    "shipment find --status": ("/v1/shipments", {"status": "cleared"}),
    "permit list": ("/v1/permits", {"holder": "acme"}),
    "org find": ("/v1/orgs", {}),
    "shipment find --party-name": ("/v1/orgs", {}),  # the directory that resolves the name
}


@pytest.mark.parametrize("command", sorted(STALE))
def test_a_stale_height_is_refused(world: World, command: str) -> None:
    path, params = STALE[command]
    line = refusal(world, command, _stale(world, path, **params))
    assert f"is stale: its certified block, height {world.old_height}, is 2 h 0 min old" in line
    assert world.proxy.url in line and f"--height {world.old_height}" in line


def test_a_stale_latest_block_is_refused(world: World) -> None:
    old = world.get(f"/v1/blocks/{world.old_height}")
    line = refusal(world, "block latest", lambda p, a: old if p == "/v1/blocks/latest" else a)
    assert f"height {world.old_height}, is 2 h 0 min old" in line


def test_a_stale_checkpoint_is_refused(world: World) -> None:
    old = world.get(f"/v1/blocks/{world.old_height}")

    def change(p: str, answer: Answer) -> Answer:
        if p == "/v1/checkpoint":
            header = old["block"]["header"]
            answer.update(height=world.old_height, header=header, certificate=old["certificate"])
        return answer

    line = refusal(world, "audit checkpoint", change)
    assert f"height {world.old_height}, is 2 h 0 min old" in line


def test_a_stale_consistency_proof_is_refused(world: World) -> None:
    """Today's ledger must be today's: an old log that extends the checkpoint is stale."""
    old_header = world.node.chain.header(world.old_height)
    assert old_header is not None
    old = world.get("/v1/log/consistency", old=world.checkpoint_log_size,
                    new=old_header.log_size)  # fmt: skip
    line = refusal(world, "audit consistency", lambda p, a: old if "consistency" in p else a)
    assert "is stale: its certified block" in line and "is 2 h 0 min old" in line


@pytest.mark.parametrize(
    "command",
    [
        ("permit", "check", "P-0002"),
        ("permit", "show", "P-0002"),
        ("block",),
        ("shipment", "find", "--party", "oceanic", "--key"),
        ("shipment", "provenance", "S-0001", "--key"),
    ],
)
def test_the_old_height_asked_for_is_accepted_and_said(
    world: World, command: tuple[str, ...]
) -> None:
    height = str(world.old_height)
    args = [*command, world.keys["officer"]] if command[-1] == "--key" else list(command)
    args += [height] if command == ("block",) else ["--height", height]
    result = cli(world, *args)
    assert result.exit_code == 0, message(result)
    assert f"verified at height {height} " in result.output
    assert f"an older block, shown because you asked for height {height}" in result.output


# --- histories truncated, emptied or reordered ----------------------------------------------


def _history(path: str, edit: Callable[[list[Value]], list[Value]]) -> Change:
    def change(p: str, answer: Answer) -> Answer:
        if p == path:
            answer["history"] = edit(list(answer["history"]))
        return answer

    return change


HISTORY_PATHS = {
    "shipment provenance": "/v1/shipments/S-0001",
    "permit show": "/v1/permits/P-0002",
    "permit check": "/v1/permits/P-0002",
    "permit check --at": "/v1/permits/P-0002",
    "proof export permit": "/v1/permits/P-0002",
}


@pytest.mark.parametrize("command", sorted(HISTORY_PATHS))
@pytest.mark.parametrize("how", ["truncated", "emptied"])
def test_a_short_history_is_refused(world: World, command: str, how: str) -> None:
    cut: Callable[[list[Value]], list[Value]] = (
        (lambda h: h[:-1]) if how == "truncated" else (lambda h: [])
    )
    line = refusal(world, command, _history(HISTORY_PATHS[command], cut))
    assert "history entries" in line and ("truncated" in line or "emptied" in line)


@pytest.mark.parametrize("command", sorted(HISTORY_PATHS))
def test_a_reordered_history_is_refused(world: World, command: str) -> None:
    line = refusal(world, command, _history(HISTORY_PATHS[command], lambda h: h[::-1]))
    assert "another key" in line


# --- another record's proof -----------------------------------------------------------------


def _swap(path: str, field: str, other: Answer) -> Change:
    def change(p: str, answer: Answer) -> Answer:
        if p == path:
            answer[field] = other[field]
        return answer

    return change


def test_another_shipments_record_is_refused(world: World) -> None:
    other = world.get("/v1/shipments/S-0002")
    line = refusal(world, "shipment provenance", _swap("/v1/shipments/S-0001", "shipment", other))
    assert "the node sent the record of another key" in line


@pytest.mark.parametrize("command", ["permit show", "permit check", "proof export permit"])
def test_another_permits_record_is_refused(world: World, command: str) -> None:
    other = world.get("/v1/permits/P-0001")
    line = refusal(world, command, _swap("/v1/permits/P-0002", "permit", other))
    assert "the node sent the record of another key" in line


def test_another_transactions_receipt_is_refused(world: World) -> None:
    history = world.get("/v1/shipments/S-0001")["history"]
    other_hash = history[1]["record"]["tx_hash"].hex()
    other = world.get(f"/v1/txs/{other_hash}")
    line = refusal(world, "tx show", lambda p, a: other if p.startswith("/v1/txs/") else a)
    assert "the node answered with another transaction" in line


def test_another_blocks_certificate_is_refused(world: World) -> None:
    old = world.get(f"/v1/blocks/{world.old_height}")
    line = refusal(world, "block latest", _swap("/v1/blocks/latest", "certificate", old))
    assert "certificate does not check out" in line


def test_the_state_at_the_time_asked_must_be_that_height(world: World) -> None:
    """``permit check --at``: the node answers the at-height request with today's permit."""
    latest = world.get("/v1/permits/P-0002")
    line = refusal(world, "permit check --at", lambda p, a: latest if p.startswith("/v1/p") else a)
    assert f"answered for height {latest['height']}" in line


# --- searches: every one proven complete ----------------------------------------------------

# command -> the path its search page comes from, and the answer's field holding the page
PAGES: dict[str, tuple[str, str | None]] = {
    "shipment find": ("/v1/shipments", None),
    "shipment find --status": ("/v1/shipments", None),
    "shipment find page 2": ("/v1/shipments", None),
    "permit list": ("/v1/permits", None),
    "energy account": ("/v1/energy/accounts/wind-coop", "trades"),
    "org find": ("/v1/orgs", None),
    "shipment find --party-name": ("/v1/shipments", None),  # the party search of the match
}
Edit = Callable[[dict[str, Any]], None]


def _page(command: str, edit: Edit) -> Change:
    path, field = PAGES[command]

    def change(p: str, answer: Answer) -> Answer:
        if p == path:
            edit(answer if field is None else answer[field])
        return answer

    return change


def _drop_first(page: dict[str, Any]) -> None:
    page["slots"] = page["slots"][1:]


def _drop_last(page: dict[str, Any]) -> None:
    page["slots"] = page["slots"][:-1]


def _next_page(page: dict[str, Any]) -> None:
    """The node skips the page asked for and serves the one after it."""
    page["start"] += len(page["slots"])
    page["slots"] = []


def _reorder(page: dict[str, Any]) -> None:
    page["slots"] = page["slots"][::-1]


def _other_proof(page: dict[str, Any]) -> None:
    page["slots"][0]["member"]["proof"] = page["head"]["proof"]


def test_every_search_command_is_in_the_kit() -> None:
    searches = {c for c in COMMANDS if c.split()[-1] in ("find", "list", "account", "market")}
    named = {"shipment find page 2", "shipment find --status", "shipment find --party-name"}
    assert searches | named == set(PAGES) | {"energy market"}


@pytest.mark.parametrize("command", sorted(PAGES))
def test_a_dropped_first_item_is_refused(world: World, command: str) -> None:
    line = refusal(world, command, _page(command, _drop_first))
    single = command == "shipment find page 2"  # one slot: the page comes up short
    assert ("must hold 1, it holds 0" if single else "is not where it belongs") in line


PAGE_LIES: dict[str, tuple[Edit, str]] = {
    "dropped last item": (_drop_last, "(a matching record or a page left out)"),
    "skipped page": (_next_page, "(a page skipped)"),
    "another record's proof": (_other_proof, "the state proof is for another key"),
}


@pytest.mark.parametrize("lie", sorted(PAGE_LIES))
@pytest.mark.parametrize("command", sorted(PAGES))
def test_a_page_lie_is_refused(world: World, command: str, lie: str) -> None:
    edit, expected = PAGE_LIES[lie]
    assert expected in refusal(world, command, _page(command, edit))


@pytest.mark.parametrize("command", sorted(set(PAGES) - {"shipment find page 2"}))
def test_reordered_results_are_refused(world: World, command: str) -> None:
    line = refusal(world, command, _page(command, _reorder))
    assert "is not where it belongs in the page (a record left out, or the page reordered)" in line


def test_a_record_withheld_from_a_key_that_may_read_it_is_refused(world: World) -> None:
    """The officer reads every shipment: the node redacts one of its matches as if it
    were an outsider's, hoping the count passes for 'one you may not read'."""
    outsider = NodeClient(world.server.url, key=read_key_file(world.keys["outsider"]))
    try:
        redacted = outsider.get("/v1/shipments", {"party": "oceanic"}, signed=True)["slots"]
    finally:
        outsider.close()
    assert redacted[0]["member"] is None

    def withhold(page: dict[str, Any]) -> None:
        page["slots"] = [redacted[0], *page["slots"][1:]]

    line = refusal(world, "shipment find", _page("shipment find", withhold))
    assert "the node withheld 1 record(s) this key may read (a matching record left out)" in line


def test_a_later_page_from_another_height_is_refused(world: World) -> None:
    """Page 2 is pinned to the first page's height: a newer or older state is refused."""
    old = world.get("/v1/shipments", party="oceanic", limit=1, after=1, height=world.old_height)
    line = refusal(world, "shipment find page 2", lambda p, a: old if p == "/v1/shipments" else a)
    assert f"asked for height {world.head}, the node answered for height {world.old_height}" in line


def test_a_search_page_says_it_is_complete(world: World) -> None:
    result = signed(world, "shipment", "find", "--party", "oceanic", "--limit", "1")
    assert result.exit_code == 0, message(result)
    assert "1 matching shipments in slots 0-0 of shipment-party 'oceanic' (2 in all)" in (
        result.output
    )
    assert f"more: --after 1 --height {world.head}" in result.output
    doc = json.loads(signed(world, "shipment", "find", "--party", "oceanic", "--json").stdout)
    assert doc["complete"] and doc["total_in_bucket"] == 2 and doc["next_after"] is None
    assert sorted(s["id"] for s in doc["shipments"]) == ["S-0001", "S-0002"]


def test_a_reader_is_told_how_many_it_may_not_see(world: World) -> None:
    """oceanic searching 'cleared' sees both (it held them); an outsider sees neither,
    and is told two members of the bucket were withheld, not which."""
    result = cli(world, "shipment", "find", "--status", "cleared", "--key", world.keys["outsider"])
    assert result.exit_code == 0, message(result)
    assert "0 of 2 matching shipments, complete" in result.output
    assert "2 more this key may not read (counted, not shown)" in result.output
    assert "S-000" not in result.output


# --- the energy market: the proven book names every order and trade -------------------------


def _market(edit: Callable[[Answer], None]) -> Change:
    def change(p: str, answer: Answer) -> Answer:
        if p.startswith("/v1/energy/market/"):
            edit(answer)
        return answer

    return change


def _shown_order(answer: Answer) -> dict[str, Any]:
    return next(o for o in answer["orders"] if not o.get("withheld"))


MARKET_LIES: dict[str, tuple[Callable[[Answer], None], str]] = {
    "dropped first order": (
        lambda a: a.update(orders=a["orders"][1:]),
        "is not the one the proven book names there (left out or reordered)",
    ),
    "dropped last trade": (
        lambda a: a.update(trades=a["trades"][:-1]),
        "trades: the proven count is 2, so the page from slot 0 must hold 2, it holds 1",
    ),
    "dropped every trade": (
        lambda a: a.update(trades=[]),
        "must hold 2, it holds 0",
    ),
    "reordered orders": (
        lambda a: a.update(orders=a["orders"][::-1]),
        "is not the one the proven book names there",
    ),
    "another record's proof": (
        lambda a: _shown_order(a).update(proof=a["market"]["proof"]),
        "the state proof is for another key",
    ),
}


@pytest.mark.parametrize("lie", sorted(MARKET_LIES))
def test_a_market_lie_is_refused(world: World, lie: str) -> None:
    edit, expected = MARKET_LIES[lie]
    assert expected in refusal(world, "energy market", _market(edit))


def test_a_market_shows_what_this_key_may_read_and_counts_the_rest(world: World) -> None:
    result = COMMANDS["energy market"](world)
    assert result.exit_code == 0, message(result)
    assert "all 3 orders and 2 trades the proven book names, complete; 1 of them" in (result.output)


@pytest.mark.parametrize("command", ["energy account", "energy market"])
def test_a_stale_energy_answer_is_refused(world: World, command: str) -> None:
    path = "/v1/energy/accounts/wind-coop"
    if command == "energy market":
        path = f"/v1/energy/market/{world.interval}"
    old = world.energy.get(path, {"height": world.old_height}, signed=True)
    line = refusal(world, command, lambda p, a: old if p == path else a)
    assert f"is stale: its certified block, height {world.old_height}, is 2 h 0 min old" in line
