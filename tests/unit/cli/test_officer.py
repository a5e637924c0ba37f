"""The customs officer's CLI (issue 20): container numbers checked, money in major units,
provenance in event order."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import Result

from cli.money import money
from contracts.shipment_search import day_of
from ledger.encoding import Value
from tests.unit.cli.kit import (
    CONTAINER,
    SHIPMENT,
    CliNode,
    ServerThread,
    build_trades,
    lying_proxy,
    message,
    now_ms,
    run,
    serve,
)


def find(url: str, genesis: str, key: str, *extra: str) -> Result:
    return run(["shipment", "find", "--node", url, "--genesis", genesis, "--key", key, *extra])


def test_container_check_digit_named(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    wrong = CONTAINER[:10] + str((int(CONTAINER[10]) + 1) % 10)
    result = find(server.url, genesis_file, keys["officer"], "--container", wrong)
    assert result.exit_code == 1
    assert f"{wrong}: check digit should be {CONTAINER[10]} (ISO 6346)" in message(result)
    bad = find(server.url, genesis_file, keys["officer"], "--container", "MSC1234567")
    assert "not an ISO 6346 container number" in message(bad)


def test_container_case_normalised(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    result = find(server.url, genesis_file, keys["officer"], "--container", CONTAINER.lower())
    assert result.exit_code == 0, message(result)
    assert "1 of 1 matching shipments, complete" in result.output


def test_declare_refuses_bad_container_before_signing(
    server: ServerThread, keys: dict[str, str]
) -> None:
    result = run(["tx", "shipment", "declare", "--key", keys["acme"], "--node", server.url,
                  "--id", "S-9", "--consignor", "acme", "--consignee", "globex",
                  "--declarant", "acme", "--origin", "CNSHA", "--destination", "KRPUS",
                  "--goods", "851712;phones;1;PCE;100;EUR",
                  "--container", "MSCU1234567"])  # fmt: skip
    assert result.exit_code == 1
    assert "MSCU1234567: check digit should be 6 (ISO 6346)" in message(result)
    assert server.call(lambda: len(server.node.mempool)) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1_023_750, "EUR", "10,237.50 EUR"),
        (500, "JPY", "500 JPY"),
        (1_234_567, "KWD", "1,234.567 KWD"),
        (7, "USD", "0.07 USD"),
        (-1_050, "USD", "-10.50 USD"),
        (5, "XAU", "5 XAU (minor units)"),
        (12, "QQQ", "12 QQQ (minor units)"),
    ],
)
def test_money(minor: int, currency: str, text: str) -> None:
    assert money(minor, currency) == text


def test_provenance_in_event_order_with_recorded_time(
    node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    earlier = now_ms() - 1_800_000  # a milestone reported half an hour after it happened
    payload = {"shipment_id": SHIPMENT, "event": "gate_in", "place": "CNSHA", "time_ms": earlier}
    node.commit([node.tx("oceanic", "shipment.milestone", payload)])
    server = serve(node)
    try:
        result = run(["shipment", "provenance", SHIPMENT, "--node", server.url,
                      "--genesis", genesis_file, "--key", keys["officer"]])  # fmt: skip
    finally:
        server.stop()
    assert result.exit_code == 0, message(result)
    out = result.output
    assert "125,000.00 EUR" in out and "minor units" not in out
    lines = [line for line in out.splitlines() if "milestone:" in line or "customs:" in line]
    assert "gate_in" in lines[0], lines  # happened first, recorded last
    assert "customs: clear" in lines[-1], lines
    gate_in = lines[0]
    assert gate_in.count("Z") >= 2  # event time and the (later) recorded time


def test_tx_show_names_the_sender_organisation_and_payload(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    block = node.chain.block(2)
    assert block is not None
    tx_hash = block.txs[1].hash.hex()  # acme attaches the bill of lading
    args = ["tx", "show", tx_hash, "--node", server.url, "--genesis", genesis_file]
    result = run([*args, "--key", keys["officer"]])
    assert result.exit_code == 0, message(result)
    out = result.output
    assert f"{block.txs[1].sender.hex()} (acme)" in out
    assert "bill_of_lading" in out and "shipment.attach_document" in out
    assert "member record proven at that block" in out
    doc = json.loads(run([*args, "--key", keys["officer"], "--json"]).stdout)
    assert doc["tx"]["sender_org"] == "acme" and doc["tx"]["payload"]["type"] == "bill_of_lading"
    withheld = run([*args, "--key", keys["outsider"], "--json"])
    assert withheld.exit_code == 0, message(withheld)
    shown = json.loads(withheld.stdout)
    assert shown["tx"] == {"kind": "shipment.attach_document", "redacted": True}
    assert "bill_of_lading" not in withheld.stdout and "acme" not in withheld.stdout


def test_block_lists_full_transaction_hashes(
    server: ServerThread, node: CliNode, genesis_file: str
) -> None:
    block = node.chain.block(2)
    assert block is not None
    result = run(["block", "2", "--node", server.url, "--genesis", genesis_file])
    assert result.exit_code == 0, message(result)
    for tx in block.txs:
        assert tx.hash.hex() in result.output
    assert block.hash.hex() in result.output and "cityledger tx show HASH" in result.output


def _csv(result: Result) -> list[list[str]]:
    raw = result.stdout_bytes.decode()
    assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")  # RFC 4180 line ends
    return list(csv.reader(io.StringIO(raw)))


def test_csv_on_lists(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    common = ["--node", server.url, "--genesis", genesis_file, "--format", "csv"]
    found = run(["shipment", "find", "--party", "acme", "--key", keys["officer"], *common])
    assert found.exit_code == 0, message(found)
    rows = _csv(found)
    assert rows[0][:4] == ["shipment", "stage", "customs_status", "holder"]
    assert rows[1][0] == SHIPMENT and CONTAINER in rows[1]
    assert "complete" in found.stderr and "complete" not in found.stdout
    timeline = run(["shipment", "provenance", SHIPMENT, "--key", keys["officer"], *common])
    rows = _csv(timeline)
    assert rows[0][:3] == ["seq", "event_time", "recorded_time"] and rows[1][4] == "declared"
    permits = run(["permit", "list", "--holder", "acme", *common])
    assert permits.exit_code == 0, message(permits)
    assert _csv(permits)[0] == [
        "permit", "type", "holder", "status", "valid_from", "valid_until", "address",
    ]  # fmt: skip
    blk = run(["block", "2", *common])
    rows = _csv(blk)
    assert rows[0] == ["index", "hash", "kind", "redacted", "sender", "nonce"]
    block = node.chain.block(2)
    assert block is not None
    assert [r[1] for r in rows[1:]] == [tx.hash.hex() for tx in block.txs]
    assert all(r[3] == "true" and r[4] == "" for r in rows[1:])  # no key: redacted
    legacy = run(["permit", "list", "--holder", "acme", *common[:-2], "--json"])
    assert json.loads(legacy.stdout)["complete"] is True


def test_csv_energy_lists(genesis_file: str, keys: dict[str, str], node: CliNode) -> None:
    interval = build_trades(node)
    server = serve(node)
    try:
        common = ["--node", server.url, "--genesis", genesis_file, "--format", "csv"]
        common += ["--key", keys["energy-regulator"], "--height", str(node.chain.head().height)]
        market = run(["energy", "market", str(interval), *common])
        account = run(["energy", "account", "wind-coop", *common])
    finally:
        server.stop()
    assert market.exit_code == 0, message(market)
    rows = _csv(market)
    assert rows[0][:3] == ["interval_start_ms", "n", "seller"] and len(rows) == 3
    assert {r[3] for r in rows[1:]} == {"wind-coop"}
    assert account.exit_code == 0, message(account)
    assert len(_csv(account)) == 3 and "account wind-coop" in account.stderr


def _pending(node: CliNode) -> int:
    return len(node.mempool)


def test_precheck_refuses_a_missing_shipment_unless_forced(
    node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    server = serve(node, produce=False)
    try:
        args = ["tx", "customs", "seize", "S-9999", "--reason", "typo", "--key", keys["officer"],
                "--node", server.url, "--genesis", genesis_file]  # fmt: skip
        refused = run(args)
        assert refused.exit_code == 1
        text = message(refused)
        assert "not sent: no shipment S-9999 exists (proven at height" in text
        assert "use --force to send anyway" in text and _pending(node) == 0
        unverified = run(args[:-2])
        assert "no shipment S-9999 exists (the node says)" in message(unverified)
        forced = run([*args, "--force"])
        assert forced.exit_code == 0, message(forced)
        assert "submitted shipment.customs_decision" in forced.output and _pending(node) == 1
    finally:
        server.stop()


def test_precheck_state_and_new_ids(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    common = ["--node", server.url, "--genesis", genesis_file]
    approve = run(["tx", "permit", "approve", "P-0001", "--key", keys["clerk"], *common])
    assert approve.exit_code == 1
    assert "permit P-0001 is issued; permit.approve applies to in_review permits" in (
        message(approve)
    )
    again = run(["tx", "shipment", "declare", "--key", keys["acme"], *common, "--id", SHIPMENT,
                 "--consignor", "acme", "--consignee", "globex", "--declarant", "acme",
                 "--origin", "CNSHA", "--destination", "KRPUS",
                 "--goods", "851712;phones;1;PCE;100;EUR"])  # fmt: skip
    assert f"not sent: shipment {SHIPMENT} already exists" in message(again)


def test_precheck_cannot_see_what_the_key_may_not_read(
    node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    """An outsider may not learn whether S-9999 exists: the check steps aside, the node decides."""
    server = serve(node, produce=False)
    try:
        result = run(["tx", "shipment", "milestone", "S-9999", "--event", "loaded",
                      "--place", "CNSHA", "--key", keys["outsider"], "--node", server.url,
                      "--genesis", genesis_file])  # fmt: skip
        assert result.exit_code == 0, message(result)
        assert _pending(node) == 1
    finally:
        server.stop()


def _today() -> str:
    return day_of(now_ms())


@pytest.mark.parametrize(
    "filters",
    [
        ["--hs", "8517"],
        ["--hs", "851712"],
        ["--port", "krpus"],
        ["--port", "CNSHA", "--party", "acme"],
        ["--from", "TODAY"],
        ["--from", "MONTH_AGO", "--to", "TODAY", "--party", "globex"],
    ],
)
def test_new_searches_find_the_shipment(
    server: ServerThread, genesis_file: str, keys: dict[str, str], filters: list[str]
) -> None:
    days = {"TODAY": _today(), "MONTH_AGO": day_of(now_ms() - 30 * 86_400_000)}
    args = [days.get(f, f) for f in filters]
    result = find(server.url, genesis_file, keys["officer"], *args, "--json")
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["complete"] is True and [s["id"] for s in doc["shipments"]] == [SHIPMENT]


def test_new_searches_proven_empty_and_bad_input(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    officer = keys["officer"]
    empty = find(server.url, genesis_file, officer, "--hs", "8518")
    assert empty.exit_code == 0, message(empty)
    assert "no shipment matches: shipment-hs '8518' is proven empty" in empty.output
    finer = find(server.url, genesis_file, officer, "--hs", "85171300")
    assert "0 of 1" in finer.output or "0 matching" in finer.output  # walked 8517, none under it
    other_day = find(
        server.url, genesis_file, officer, "--from", "2021-03-01", "--to", "2021-03-03"
    )
    assert other_day.exit_code == 0, message(other_day)
    assert "0 shipments declared 2021-03-01 .. 2021-03-03" in other_day.output
    assert "all 3 day buckets proven whole" in other_day.output
    for args, text in [
        (["--hs", "85"], "a 2-digit chapter is not searchable"),
        (["--port", "KRPU"], "not a UN/LOCODE"),
        (["--from", "2024-01-01", "--to", "2025-06-01"], "at most 366 days"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "is before --from"),
        (["--from", "1 May"], "YYYY-MM-DD"),
    ]:
        bad = find(server.url, genesis_file, officer, *args)
        assert bad.exit_code == 1 and text in message(bad), (args, message(bad))


def test_a_day_bucket_cut_short_is_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def drop(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        if path.startswith("/v1/shipments") and isinstance(answer.get("slots"), list):
            answer["slots"] = []
            answer["next_after"] = None
        return answer

    proxy = lying_proxy(server.url, drop)
    try:
        result = find(proxy.url, genesis_file, keys["officer"], "--from", _today())
    finally:
        proxy.stop()
    assert result.exit_code == 1 and "REFUSED" in message(result), message(result)


def test_the_api_refuses_malformed_new_filters(server: ServerThread) -> None:
    from cli.client import NodeClient, NodeError
    from tests.unit.cli.kit import key

    client = NodeClient(server.url, key=key("officer"))
    for params in ({"hs": "85"}, {"port": "krpus"}, {"day": "2024-1-1"}, {"limit": 5}):
        with pytest.raises(NodeError):
            client.get("/v1/shipments", params, signed=True)
    client.close()


def test_precheck_customs_transition(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    common = ["--key", keys["officer"], "--node", server.url, "--genesis", genesis_file]
    result = run(["tx", "customs", "release", SHIPMENT, "--reason", "paid", *common, "--wait"])
    assert result.exit_code == 0, message(result)  # cleared -> released applies
    again = run(["tx", "customs", "clear", SHIPMENT, "--reason", "x", "--key", keys["officer"],
                 "--node", server.url, "--genesis", genesis_file, "--wait"])  # fmt: skip
    assert f"cannot clear shipment {SHIPMENT}: its customs status is released" in message(again)
