"""``shipment provenance|find`` against a real API: verified answers, and lies refused."""

from __future__ import annotations

import json
from typing import Any

from ledger.encoding import Value
from tests.unit.cli.kit import (
    CONTAINER,
    SHIPMENT,
    VALIDATORS,
    CliNode,
    ServerThread,
    lying_proxy,
    message,
    run,
)


def provenance(url: str, genesis: str, key: str, *extra: str) -> Any:
    return run(["shipment", "provenance", SHIPMENT, "--node", url, "--genesis", genesis,
                "--key", key, *extra])  # fmt: skip


def test_provenance_verified(server: ServerThread, genesis_file: str, keys: dict[str, str]) -> None:
    result = provenance(server.url, genesis_file, keys["officer"])
    assert result.exit_code == 0, message(result)
    out = result.output
    assert "verified at height" in out and "(3 of 4 voting power)" in out
    assert "busan-0, sejong-1, incheon-2" in out
    for text in ("mobile phones", CONTAINER, "custody acme → oceanic", "customs: clear"):
        assert text in out, text


def test_provenance_json(server: ServerThread, genesis_file: str, keys: dict[str, str]) -> None:
    result = provenance(server.url, genesis_file, keys["acme"], "--json")
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["verified"] and doc["voting_power"] == 3 and doc["total_power"] == 4
    events = [e["event"] for e in doc["history"]]
    assert events[0] == "declared" and events[-1] == "customs_decision"
    assert doc["shipment"]["holder"] == "oceanic"


def test_provenance_needs_a_key_that_may_read(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    unsigned = run(["shipment", "provenance", SHIPMENT, "--node", server.url,
                    "--genesis", genesis_file])  # fmt: skip
    assert unsigned.exit_code != 0 and "--key" in message(unsigned)
    outsider = provenance(server.url, genesis_file, keys["outsider"])
    assert outsider.exit_code != 0 and "forbidden" in message(outsider)


def _lie(server: ServerThread, path_part: str, change: Any) -> ServerThread:
    def rewrite(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        if path_part in path:
            change(answer)
        return answer

    return lying_proxy(server.url, rewrite)


def _refused(server: ServerThread, genesis: str, keys: dict[str, str], change: Any) -> str:
    proxy = _lie(server, "/v1/shipments/", change)
    try:
        result = provenance(proxy.url, genesis, keys["officer"])
    finally:
        proxy.stop()
    assert result.exit_code != 0, result.output
    text = message(result)
    assert "REFUSED" in text, text
    return text


def test_forged_record_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def forge(answer: dict[str, Value]) -> None:
        answer["shipment"]["record"]["customs_status"] = "released"

    assert "forged record" in _refused(server, genesis_file, keys, forge)


def test_forged_history_entry_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def forge(answer: dict[str, Value]) -> None:
        answer["history"][1]["record"]["actor_org"] = "globex"

    assert "forged record" in _refused(server, genesis_file, keys, forge)


def test_forged_certificate_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def forge(answer: dict[str, Value]) -> None:
        sigs = answer["certificate"]["signatures"]
        sigs[0][1] = bytes(64)

    assert "certificate" in _refused(server, genesis_file, keys, forge)


def test_certificate_by_strangers_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    from ledger.block import BlockHeader
    from ledger.crypto import PrivateKey
    from ledger.votes import CommitCertificate, Vote, VoteType

    def forge(answer: dict[str, Value]) -> None:
        header = BlockHeader.from_obj(answer["header"])
        strangers = [PrivateKey.from_label(f"stranger-{i}") for i in range(3)]
        votes = [Vote.create(k, header.chain_id, VoteType.PRECOMMIT, header.height, 0, header.hash)
                 for k in strangers]  # fmt: skip
        answer["certificate"] = CommitCertificate.from_votes(votes).to_obj()

    assert "not a validator" in _refused(server, genesis_file, keys, forge)


def test_too_few_signatures_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def forge(answer: dict[str, Value]) -> None:
        answer["certificate"]["signatures"] = answer["certificate"]["signatures"][:2]

    assert "more than 2/3" in _refused(server, genesis_file, keys, forge)


def test_truncated_history_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def truncate(answer: dict[str, Value]) -> None:
        answer["history"] = answer["history"][:-1]

    assert "truncated" in _refused(server, genesis_file, keys, truncate)


def test_hidden_tail_refused(server: ServerThread, genesis_file: str, keys: dict[str, str]) -> None:
    def hide(answer: dict[str, Value]) -> None:
        answer["history"] = answer["history"][:-1]
        answer["shipment"]["record"]["history_len"] -= 1
        answer["history_end"] = {"key": b"x", "record": None, "proof": {}}

    _refused(server, genesis_file, keys, hide)


def test_old_header_with_other_state_refused(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    old = node.chain.block(2)
    assert old is not None

    def swap(answer: dict[str, Value]) -> None:  # a genuine certificate, for another header
        answer["header"] = old.header.to_obj()
        answer["height"] = 2
        cert = node.chain.certificate(2)
        assert cert is not None
        answer["certificate"] = cert.to_obj()

    assert "state proof fails" in _refused(server, genesis_file, keys, swap)


def test_forged_receipt_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def rewrite(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        if path.startswith("/v1/shipments/"):
            answer.pop("history_tx_proofs", None)  # make the CLI fall back to receipts
        if path.startswith("/v1/txs/"):
            answer["receipt"]["code"] = "forbidden"
        return answer

    proxy = lying_proxy(server.url, rewrite)
    try:
        result = provenance(proxy.url, genesis_file, keys["officer"])
    finally:
        proxy.stop()
    assert result.exit_code != 0 and "results_root" in message(result)


def test_wrong_genesis_refused(server: ServerThread, tmp_path: Any, keys: dict[str, str]) -> None:
    from ledger.genesis import Genesis
    from ledger.validators import Validator, ValidatorSet

    other = Genesis("cli-test", 0, ValidatorSet((Validator("x", VALIDATORS[3].public_key, 1),)), ())
    path = tmp_path / "other.json"
    path.write_text(other.to_json())
    result = provenance(server.url, str(path), keys["officer"])
    assert result.exit_code != 0 and "validator set" in message(result)


def test_find(server: ServerThread, genesis_file: str, keys: dict[str, str]) -> None:
    for option, value in (("--container", CONTAINER), ("--party", "oceanic"),
                          ("--status", "cleared")):  # fmt: skip
        result = run(["shipment", "find", option, value, "--node", server.url,
                      "--genesis", genesis_file, "--key", keys["officer"], "--json"])  # fmt: skip
        assert result.exit_code == 0, message(result)
        doc = json.loads(result.stdout)
        assert [s["id"] for s in doc["shipments"]] == [SHIPMENT]
    none = run(["shipment", "find", "--status", "seized", "--node", server.url,
                "--genesis", genesis_file, "--key", keys["officer"]])  # fmt: skip
    assert none.exit_code == 0, message(none)
    assert "no shipment matches: shipment-status 'seized' is proven empty" in none.output


def test_find_says_how_many_and_that_the_list_is_complete(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    result = run(["shipment", "find", "--party", "oceanic", "--node", server.url,
                  "--genesis", genesis_file, "--key", keys["officer"]])  # fmt: skip
    assert result.exit_code == 0, message(result)
    assert "1 of 1 matching shipments, complete: every member of shipment-party 'oceanic'" in (
        result.output
    )
    as_json = run(["shipment", "find", "--party", "oceanic", "--node", server.url,
                   "--genesis", genesis_file, "--key", keys["officer"], "--json"])  # fmt: skip
    doc = json.loads(as_json.stdout)
    assert doc["complete"] is True and doc["total_in_bucket"] == 1 and doc["next_after"] is None


def test_find_after_needs_the_first_pages_height(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    result = run(["shipment", "find", "--party", "oceanic", "--after", "1", "--node", server.url,
                  "--genesis", genesis_file, "--key", keys["officer"]])  # fmt: skip
    assert result.exit_code != 0 and "--after needs --height" in message(result)


def test_find_refuses_a_page_of_another_bucket(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    """A node answering a 'held' search with the 'cleared' bucket is caught."""
    import pytest

    from cli.client import NodeClient
    from contracts.shipment_search import ShipmentFilter
    from ledger.genesis import Genesis
    from ledger.keyfile import read_key_file
    from lightclient.errors import VerificationError
    from lightclient.search import Paging, verify_shipment_search

    genesis = Genesis.load(genesis_file)
    officer = read_key_file(keys["officer"])
    client = NodeClient(server.url, key=officer)
    answer = client.get("/v1/shipments", {"status": "cleared"}, signed=True)
    me = officer.public_key
    view = verify_shipment_search(answer, genesis, ShipmentFilter(status="cleared"), Paging(), me)
    assert [s.id for s in view.found] == [SHIPMENT]
    with pytest.raises(VerificationError, match="a bucket the search did not ask about"):
        verify_shipment_search(answer, genesis, ShipmentFilter(status="held"), Paging(), me)
