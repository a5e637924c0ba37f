"""``cityledger gov ...``: propose (prints the id), approve, withdraw, list, show (proven)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.cli.kit import ServerThread, key, message, run


def gov(server: ServerThread, keys: dict[str, str], signer: str, *args: str) -> Any:
    return run(["gov", *args, "--key", keys[signer], "--node", server.url, "--json"])


def propose_grant(server: ServerThread, keys: dict[str, str], label: str, *more: str) -> Any:
    pk = key(label).public_key.hex()
    args = ["propose", "role-grant", "--org", "busan-port", "--public-key", pk,
            "--name", label, "--role", "customs", "--wait", *more]  # fmt: skip
    return gov(server, keys, "customs-admin", *args)


def test_propose_show_list_withdraw(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    result = propose_grant(server, keys, "new-officer", "--genesis", genesis_file)
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    pid = doc["proposal_id"]
    assert pid.startswith("gov-") and doc["status"] == "committed" and doc["verified"]
    # any member reads it; with the genesis the record is proven
    shown = gov(server, keys, "acme", "show", pid, "--genesis", genesis_file)
    assert shown.exit_code == 0, message(shown)
    answer = json.loads(shown.stdout)
    assert answer["verified"] and answer["status"] == "pending"
    assert answer["proposal"]["approvals"] == ["busan-customs"]
    listed = gov(server, keys, "acme", "list", "--genesis", genesis_file)
    assert listed.exit_code == 0, message(listed)
    assert [p["proposal"]["id"] for p in json.loads(listed.stdout)["proposals"]] == [pid]
    # without the genesis: the node's word, said so
    plain = run(["gov", "show", pid, "--key", keys["acme"], "--node", server.url])
    assert plain.exit_code == 0 and "unverified" in plain.output
    withdrawn = gov(server, keys, "customs-admin", "withdraw", pid, "--wait")
    assert withdrawn.exit_code == 0, message(withdrawn)
    again = gov(server, keys, "acme", "show", pid)
    assert json.loads(again.stdout)["status"] == "withdrawn"


def test_refusals_are_one_line_with_the_code(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    # approving a proposal that does not exist
    missing = gov(server, keys, "customs-admin", "approve", "gov-" + "00" * 16, "--wait")
    assert missing.exit_code == 1 and "not_found" in missing.output
    # the proposer's own agency already approved
    pid = json.loads(propose_grant(server, keys, "dup").stdout)["proposal_id"]
    double = gov(server, keys, "customs-admin", "approve", pid, "--wait")
    assert double.exit_code == 1 and "duplicate" in double.output
    # a trader's admin is no founding agency's
    trader = gov(server, keys, "acme", "approve", pid, "--wait")
    assert trader.exit_code == 1 and "forbidden" in trader.output
    # the customs agency already runs one of the four validators: a second would give it
    # 2 of 5 (the one-third rail)
    add = gov(server, keys, "customs-admin", "propose", "validator-add", "--public-key",
              "11" * 32, "--name", "new-node", "--power", "1", "--wait")  # fmt: skip
    assert add.exit_code == 1 and "(rail_org_power)" in add.output
    # malformed input is refused before anything is signed
    bad = gov(server, keys, "customs-admin", "propose", "validator-remove", "--public-key", "zz")
    assert bad.exit_code == 1 and "--public-key must be hex" in bad.output
    bad_id = gov(server, keys, "acme", "show", "gov-1")
    assert bad_id.exit_code == 1 and "is not a proposal id" in bad_id.output
    params = gov(server, keys, "customs-admin", "propose", "params-set", "--set", "nope=1")
    assert params.exit_code == 1 and "NAME=VALUE" in params.output


def test_propose_prints_the_id(server: ServerThread, keys: dict[str, str]) -> None:
    args = ["gov", "propose", "org-suspend", "--org", "outsider", "--reason", "unpaid fees",
            "--key", keys["customs-admin"], "--node", server.url]  # fmt: skip
    result = run(args)
    assert result.exit_code == 0, message(result)
    line = next(x for x in result.output.splitlines() if x.startswith("proposal id: "))
    pid = line.removeprefix("proposal id: ")
    assert len(pid) == 36 and pid.startswith("gov-")
