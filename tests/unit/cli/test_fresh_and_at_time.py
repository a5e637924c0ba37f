"""Answers judged at the time asked, and fresh unless an older block was asked for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli import kit
from tests.unit.cli.kit import CliNode, ServerThread, build_permit, message, run, serve


def check(server: ServerThread, genesis: str, *extra: str) -> Any:
    return run(["permit", "check", "P-0001", "--node", server.url, "--genesis", genesis, *extra])


def _commit(server: ServerThread, node: CliNode, kind: str, **payload: Any) -> int:
    """Commit one permit action on P-0001 (on the server's loop); the block's time."""
    tx = node.tx("clerk", kind, {"permit_id": "P-0001", **payload})
    return int(server.call(lambda: node.commit([tx]).header.time_ms))


@pytest.fixture
def lifecycle(server: ServerThread, node: CliNode) -> dict[str, int]:
    """P-0001 issued, suspended, reinstated, revoked: the block time of each step."""
    issued = node.chain.head().time_ms
    issued_height = node.chain.head().height
    suspended = _commit(server, node, "permit.suspend", reason="inspection pending")
    reinstated = _commit(server, node, "permit.reinstate", reason="inspection passed")
    revoked = _commit(server, node, "permit.revoke", reason="fraud")
    return {"issued": issued, "issued_height": issued_height, "suspended": suspended,
            "reinstated": reinstated, "revoked": revoked}  # fmt: skip


def test_validity_at_a_time_is_judged_on_the_permit_as_it_stood(
    server: ServerThread, genesis_file: str, lifecycle: dict[str, int]
) -> None:
    expected = [
        (lifecycle["issued"], 0, "issued, valid from"),
        (lifecycle["suspended"], 1, "permit is suspended"),
        (lifecycle["reinstated"], 0, "issued, valid from"),
        (lifecycle["revoked"] - 1, 0, "issued, valid from"),
        (lifecycle["revoked"], 1, "permit is revoked"),
    ]
    for at, code, reason in expected:
        result = check(server, genesis_file, "--at", str(at), "--json")
        assert result.exit_code == code, (at, message(result))
        doc = json.loads(result.stdout)
        assert doc["reason"].startswith(reason) and doc["at_ms"] == at, doc
    now = check(server, genesis_file, "--json")
    assert now.exit_code == 1 and json.loads(now.stdout)["reason"] == "permit is revoked"


def test_the_time_asked_says_which_older_block_it_used(
    server: ServerThread, genesis_file: str, lifecycle: dict[str, int]
) -> None:
    result = check(server, genesis_file, "--at", str(lifecycle["issued"]))
    assert result.exit_code == 0 and "VALID" in result.output, message(result)
    assert "an older block, shown because you asked for the permit as it stood at" in result.output
    assert f"verified at height {lifecycle['issued_height']}" in result.output


def test_check_at_a_height_matches_show_at_that_height(
    server: ServerThread, genesis_file: str, lifecycle: dict[str, int]
) -> None:
    height = str(lifecycle["issued_height"])
    at_height = check(server, genesis_file, "--height", height, "--json")
    assert at_height.exit_code == 0, message(at_height)
    shown = run(["permit", "show", "P-0001", "--node", server.url, "--genesis", genesis_file,
                 "--height", height, "--json"])  # fmt: skip
    assert shown.exit_code == 0, message(shown)
    for doc in (json.loads(at_height.stdout), json.loads(shown.stdout)):
        assert doc["valid"] is True and doc["height"] == lifecycle["issued_height"]
        assert doc["asked"] == f"height {height}"


def test_before_the_permit_existed_it_was_not_valid(
    server: ServerThread, node: CliNode, genesis_file: str
) -> None:
    before = node.genesis.genesis_time_ms
    result = check(server, genesis_file, "--at", str(before), "--json")
    assert result.exit_code == 1, message(result)
    assert json.loads(result.stdout)["reason"] == "the permit did not exist yet at that time"


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (["--at", "2030-01-01", "--height", "3"], "give --at or --height, not both"),
        (["--at", "yesterday"], "neither milliseconds nor an ISO 8601 time"),
        (["--height", "0"], "--height"),
        (["--max-age", "-1"], "--max-age"),
    ],
)
def test_bad_options_are_refused_and_ask_nothing(
    server: ServerThread, node: CliNode, genesis_file: str, extra: list[str], complaint: str
) -> None:
    height = node.chain.head().height
    result = check(server, genesis_file, *extra)
    assert result.exit_code == 2 and complaint in message(result), message(result)
    assert node.chain.head().height == height


# --- a network that stopped two minutes ago --------------------------------------------------


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    """A node whose last block is two minutes old, serving without producing blocks."""
    real_now = kit.now_ms
    node = CliNode(genesis=kit.make_genesis(real_now() - 3_600_000))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kit, "now_ms", lambda: real_now() - 120_000)
        build_permit(node)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(node.genesis.to_json())
    server = serve(node, produce=False)
    yield server, str(genesis)
    server.stop()


def test_a_stale_answer_is_refused_by_default(
    stopped: tuple[ServerThread, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, genesis = stopped
    monkeypatch.delenv("CITYLEDGER_MAX_AGE", raising=False)
    result = run(["permit", "show", "P-0001", "--node", server.url, "--genesis", genesis])
    assert result.exit_code == 1
    lines = [line for line in message(result).splitlines() if "REFUSED" in line]
    assert len(lines) == 1 and server.url in lines[0], message(result)
    assert "is 2 min 0 s old, over the limit of 1 min 0 s" in lines[0]
    assert "ask another node" in lines[0] and "--height 4" in lines[0]


def test_the_age_limit_comes_from_the_environment(
    stopped: tuple[ServerThread, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, genesis = stopped
    monkeypatch.setenv("CITYLEDGER_MAX_AGE", "600")
    result = run(["permit", "show", "P-0001", "--node", server.url, "--genesis", genesis,
                  "--json"])  # fmt: skip
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert 120_000 <= doc["age_ms"] < 600_000 and doc["asked"] is None
    assert abs(doc["block_time_ms"] + doc["age_ms"] - kit.now_ms()) < 60_000


def test_an_old_height_asked_for_is_accepted_and_said(stopped: tuple[ServerThread, str]) -> None:
    server, genesis = stopped
    result = run(["permit", "show", "P-0001", "--node", server.url, "--genesis", genesis,
                  "--height", "4"])  # fmt: skip
    assert result.exit_code == 0, message(result)
    assert "2 min 0 s old" in result.output
    assert "an older block, shown because you asked for height 4" in result.output


def test_a_bundle_says_how_old_it_is(stopped: tuple[ServerThread, str], tmp_path: Path) -> None:
    server, genesis = stopped
    bundle = tmp_path / "bundle.json"
    export = ["proof", "export", "permit", "P-0001", "--node", server.url, "--genesis", genesis]
    stale = run([*export, "--out", str(bundle)])
    assert stale.exit_code == 1 and "is stale" in message(stale)
    made = run([*export, "--out", str(bundle), "--max-age", "600"])
    assert made.exit_code == 0, message(made)
    result = run(["proof", "verify", str(bundle), "--genesis", genesis])
    assert result.exit_code == 0, message(result)
    assert "checked offline: the bundle proves this as of height 4, 2 min 0 s ago" in result.output
    assert "an older block, shown because you asked for a saved bundle" in result.output
