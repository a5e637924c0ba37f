"""Parties by name (issue 20): ``org find NAME`` and ``shipment find --consignor-name /
--consignee-name / --party-name``, every name resolved over the whole organisation
directory proven complete, then each matching organisation's party search proven
complete; a node that hides or swaps an organisation is refused.

The chain: the usual journey (acme -> globex, S-0001), then two organisations named
Hanjin registered by the customs agency's admin, and three declarations naming them:
S-0101 Hanjin Shipping -> globex, S-0102 acme -> HANJIN Logistics, S-0103 globex ->
Hanjin Shipping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from contracts import queries
from contracts.shipment_search import day_of
from ledger.encoding import Value
from tests.unit.cli.kit import (
    CONTAINER,
    CliNode,
    Served,
    build_journey,
    declare_payload,
    key,
    message,
    run,
)

Answer = dict[str, Value]
NEW_ORGS = {
    "hanjin-shipping": "Hanjin Shipping Co., Ltd.",
    "hanjin-logistics": "HANJIN  Logistics",
    "seoul-freight": "Seoul Freight",
}
DECLARED = {  # shipment -> (consignor, consignee)
    "S-0101": ("hanjin-shipping", "globex"),
    "S-0102": ("acme", "hanjin-logistics"),
    "S-0103": ("globex", "hanjin-shipping"),
}


def _register(node: CliNode) -> None:
    txs = []
    for org_id, name in NEW_ORGS.items():
        admin = {"public_key": key(org_id).public_key, "name": "admin",
                 "roles": ["admin", "trader"]}  # fmt: skip
        payload = {"id": org_id, "name": name, "kind": "trader", "city": "Busan",
                   "members": [admin]}  # fmt: skip
        txs.append(node.tx("customs-admin", "identity.register_org", payload))
    node.commit(txs)


def _declare(node: CliNode) -> None:
    txs = []
    for shipment, (consignor, consignee) in DECLARED.items():
        payload = {**declare_payload(shipment, CONTAINER), "consignor": consignor,
                   "consignee": consignee, "declarant": consignor}  # fmt: skip
        txs.append(node.tx(consignor, "shipment.declare", payload))
    node.commit(txs)


def _world(tmp: Path) -> Served:
    node = CliNode()
    build_journey(node)
    _register(node)
    _declare(node)
    return Served(node, tmp, NEW_ORGS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = _world(tmp_path_factory.mktemp("names"))
    yield served
    served.stop()


def cli(world: Served, *args: str, via_liar: bool = False) -> Result:
    url = world.proxy.url if via_liar else world.server.url
    return run([*args, "--node", url, "--genesis", world.genesis])


def find(world: Served, *args: str, label: str = "officer", via_liar: bool = False) -> Result:
    return cli(world, "shipment", "find", *args, "--key", world.keys[label], via_liar=via_liar)


def found_ids(result: Result) -> list[str]:
    assert result.exit_code == 0, message(result)
    return sorted(s["id"] for s in json.loads(result.stdout)["shipments"])


# --- org find ---------------------------------------------------------------------------------


def test_org_find_lists_every_match_case_insensitively(world: Served) -> None:
    result = cli(world, "org", "find", "hanJIN")
    assert result.exit_code == 0, message(result)
    out = result.output
    assert "hanjin-shipping" in out and "hanjin-logistics" in out and "seoul-freight" not in out
    total = len(world.node.genesis.organisations) + len(NEW_ORGS)
    assert f"2 of {total} organisations match 'hanJIN' (case-insensitive substring" in out
    assert f"the directory of all {total} organisations is proven complete at height" in out
    assert "proven complete at height" in out and "✔ verified at height" in out


def test_org_find_json_and_white_space(world: Served) -> None:
    result = cli(world, "org", "find", "hanjin   logistics", "--json")
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["complete"] and doc["verified"]
    assert [o["id"] for o in doc["organisations"]] == ["hanjin-logistics"]
    assert doc["directory_size"] == len(world.node.genesis.organisations) + len(NEW_ORGS)


def test_org_find_no_match_says_the_directory_was_complete(world: Served) -> None:
    result = cli(world, "org", "find", "Maersk")
    assert result.exit_code == 0, message(result)
    assert "no organisation's name contains 'Maersk'" in result.output
    assert "so none is left out" in result.output
    assert "hanjin" not in result.output


def test_org_find_needs_no_key_and_refuses_an_empty_name(world: Served) -> None:
    assert cli(world, "org", "find", "seoul").exit_code == 0  # unsigned: organisations are public
    empty = cli(world, "org", "find", "   ")
    assert empty.exit_code == 1
    assert "NAME: give part of an organisation's name (it is empty)" in message(empty)


# --- shipment find by name --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "name", "expected"),
    [
        ("--consignor-name", "hanjin", ["S-0101"]),
        ("--consignee-name", "hanjin", ["S-0102", "S-0103"]),
        ("--consignee-name", "Hanjin Shipping", ["S-0103"]),
        ("--party-name", "HANJIN", ["S-0101", "S-0102", "S-0103"]),
        ("--consignor-name", "acme", ["S-0001", "S-0102"]),
        ("--consignee-name", "seoul", []),
    ],
)
def test_a_search_by_name_finds_the_role_asked(
    world: Served, option: str, name: str, expected: list[str]
) -> None:
    assert found_ids(find(world, option, name, "--json")) == expected


def test_names_combine_with_each_other_and_with_filters(world: Served) -> None:
    both = find(world, "--consignor-name", "globex", "--consignee-name", "hanjin", "--json")
    assert found_ids(both) == ["S-0103"]
    cleared = find(world, "--party-name", "acme", "--status", "cleared", "--json")
    assert found_ids(cleared) == ["S-0001"]


def test_a_name_with_declaration_days(world: Served) -> None:
    declared = queries.get_shipment(world.node.latest_state(), "S-0103")
    assert declared is not None
    day = day_of(declared.declared_time_ms)
    on_the_day = find(world, "--consignee-name", "hanjin", "--from", day, "--json")
    assert found_ids(on_the_day) == ["S-0102", "S-0103"]
    long_ago = find(world, "--consignee-name", "hanjin", "--from", "2001-01-01", "--json")
    assert found_ids(long_ago) == []


def test_org_find_csv_and_an_older_height(world: Served) -> None:
    before = str(world.node.chain.head().height - 2)  # before the Hanjin registrations
    result = cli(world, "org", "find", "hanjin", "--format", "csv")
    assert result.exit_code == 0, message(result)
    assert result.stdout.splitlines()[0] == "org,name,kind,city,founding"
    assert 'hanjin-shipping,"Hanjin Shipping Co., Ltd.",trader,Busan,no' in result.stdout
    old = cli(world, "org", "find", "hanjin", "--height", before)
    assert old.exit_code == 0, message(old)
    assert "no organisation's name contains 'hanjin'" in old.output
    assert f"an older block, shown because you asked for height {before}" in old.output


def test_the_table_names_the_matches_and_says_complete(world: Served) -> None:
    result = find(world, "--consignee-name", "hanjin")
    assert result.exit_code == 0, message(result)
    out = result.output
    assert "--consignee-name: 2 organisations' names contain 'hanjin'" in out
    assert "hanjin-shipping (Hanjin Shipping Co., Ltd.), hanjin-logistics (HANJIN  Logistics)" in (
        out
    )
    assert (
        "2 shipments whose consignee is one of the 2 organisations matching 'hanjin', complete"
        in out
    )
    assert "S-0102" in out and "S-0103" in out and "S-0101" not in out


def test_a_name_matching_nobody_is_said_so(world: Served) -> None:
    result = find(world, "--consignor-name", "Maersk")
    assert result.exit_code == 0, message(result)
    assert "no organisation's name contains 'Maersk'" in result.output
    assert "0 shipments: a name matched no organisation" in result.output


def test_a_reader_is_told_what_it_may_not_see(world: Served) -> None:
    """seoul-freight is party to nothing: it sees the matches' counts, never their ids."""
    result = find(world, "--consignee-name", "hanjin", label="seoul-freight")
    assert result.exit_code == 0, message(result)
    assert "0 shipments whose consignee is one of" in result.output
    assert "S-01" not in result.output
    assert "up to 3 more this key may not read (the withheld slots" in result.output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--consignor-name", " "], "--consignor-name: give part of an organisation's name"),
        (["--consignor-name", "hanjin", "--party", "acme"], "give --party (an organisation id)"),
        (["--party-name", "hanjin", "--after", "2", "--height", "3"], "no --after"),
    ],
)
def test_bad_name_searches_get_one_line(world: Served, args: list[str], error: str) -> None:
    result = find(world, *args)
    assert result.exit_code == 1 and error in message(result)


# --- a lying node -----------------------------------------------------------------------------


def lie(world: Served, path: str, edit: Callable[[dict[str, Any]], None]) -> Callable[..., Any]:
    def change(p: str, answer: Answer) -> Answer:
        if p == path:
            edit(answer)
        return answer

    world.liar.change = change
    return change


def refused(world: Served, result: Result) -> str:
    world.liar.change = lambda _p, a: a
    lines = [line for line in message(result).splitlines() if "REFUSED" in line]
    assert result.exit_code == 1 and len(lines) == 1, message(result)
    return lines[0]


def _slot_of(answer: dict[str, Any], org_id: str) -> int:
    keys = [s["member"]["key"] for s in answer["slots"]]
    return keys.index(f"org/{org_id}".encode())


def _drop(org_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        del answer["slots"][_slot_of(answer, org_id)]

    return edit


def _drop_and_recount(org_id: str) -> Callable[[dict[str, Any]], None]:
    """The matching organisation left out and the count lowered to hide it."""

    def edit(answer: dict[str, Any]) -> None:
        answer["slots"] = answer["slots"][: _slot_of(answer, org_id)]
        answer["head"]["record"]["count"] = len(answer["slots"])

    return edit


def _swap(org_id: str, other: str) -> Callable[[dict[str, Any]], None]:
    """Another organisation's (genuine, proven) record served in the matching one's slot."""

    def edit(answer: dict[str, Any]) -> None:
        slots = answer["slots"]
        slots[_slot_of(answer, org_id)]["member"] = slots[_slot_of(answer, other)]["member"]

    return edit


def _rename(org_id: str) -> Callable[[dict[str, Any]], None]:
    """The matching organisation's record shown under another name (its proof kept)."""

    def edit(answer: dict[str, Any]) -> None:
        answer["slots"][_slot_of(answer, org_id)]["member"]["record"]["name"] = "Someone Else"

    return edit


DIRECTORY_LIES = {
    "left out": (_drop("hanjin-logistics"), "is not where it belongs in the page"),
    "left out, count lowered": (
        _drop_and_recount("hanjin-logistics"),
        "the record shown differs from the proven value (forged record)",
    ),
    "another organisation swapped in": (
        _swap("hanjin-logistics", "seoul-freight"),
        "the node sent the record of another key",
    ),
    "renamed": (_rename("hanjin-logistics"), "'org/hanjin-logistics': the record shown differs"),
}


@pytest.mark.parametrize("lie_name", sorted(DIRECTORY_LIES))
@pytest.mark.parametrize("command", ["org find", "shipment find --consignee-name"])
def test_a_directory_lie_is_refused(world: Served, command: str, lie_name: str) -> None:
    edit, expected = DIRECTORY_LIES[lie_name]
    lie(world, "/v1/orgs", edit)
    if command == "org find":
        result = cli(world, "org", "find", "hanjin", via_liar=True)
    else:
        result = find(world, "--consignee-name", "hanjin", via_liar=True)
    assert expected in refused(world, result)


def test_a_party_search_lie_is_refused(world: Served) -> None:
    """The directory is honest; the matching organisation's shipments are cut short."""
    lie(world, "/v1/shipments", lambda a: a.update(slots=a["slots"][:-1]))
    result = find(world, "--consignee-name", "hanjin logistics", via_liar=True)
    assert "(a matching record or a page left out)" in refused(world, result)
