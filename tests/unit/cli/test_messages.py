"""The messages a newcomer meets first say what to do (issue 20, "Messages"): a missing
``--genesis`` says where the file comes from and names CITYLEDGER_GENESIS; a key that is
not registered says who registers keys; ``--home`` wins over a CITYLEDGER_NODE left in
the environment."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.cli.kit import CliNode, ServerThread, message, run, write_keys
from tests.unit.cli.test_audit import leveldb_home


def test_a_missing_genesis_says_where_to_get_it_and_names_the_variable(
    server: ServerThread,
) -> None:
    for command in (["shipment", "provenance", "S-0001"], ["permit", "check", "P-0001"]):
        result = run([*command, "--node", server.url], env={"CITYLEDGER_GENESIS": ""})
        assert result.exit_code == 2, message(result)
        text = " ".join(result.output.split())
        assert "--genesis is required" in text
        assert "from the agency that runs the network" in text
        assert "CITYLEDGER_GENESIS=FILE" in text


def test_an_online_audit_without_genesis_gets_the_same_advice(server: ServerThread) -> None:
    result = run(["audit", "verify", "--node", server.url], env={"CITYLEDGER_GENESIS": ""})
    assert result.exit_code == 1
    assert "CITYLEDGER_GENESIS=FILE" in " ".join(result.output.split())


def test_a_key_nobody_registered_is_told_who_registers_keys(
    server: ServerThread, node: CliNode, genesis_file: str, tmp_path: Path
) -> None:
    stranger = write_keys(str(tmp_path), ["stranger"])["stranger"]
    pending = len(node.mempool)
    result = run(["tx", "permit", "suspend", "P-0001", "--reason", "x", "--key", stranger,
                  "--node", server.url, "--genesis", genesis_file])  # fmt: skip
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "(unknown_sender)" in text
    assert "your organisation's admin registers member keys" in text
    assert "tx identity register-member" in text
    assert len(node.mempool) == pending, "nothing was admitted"


def test_home_wins_over_a_node_url_left_in_the_environment(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    env = {"CITYLEDGER_NODE": "http://127.0.0.1:9"}  # nothing listens there
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"], env=env)
    assert result.exit_code == 0, message(result)
    assert json.loads(result.stdout)["ok"]
    both = run(["audit", "verify", "--home", str(home), "--node", "http://127.0.0.1:9"])
    assert both.exit_code == 1 and "give exactly one of --home" in both.output
