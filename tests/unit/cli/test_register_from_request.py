"""``tx identity register-org --request FILE``: a founding agency registers an organisation
that joins later from the join request it sent (``genesis request``), whose signatures
are checked first; a changed request, or one for another chain, sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from tests.unit.cli.kit import CHAIN_ID, ServerThread, message, run


def _request(tmp: Path, chain_id: str = CHAIN_ID) -> Path:
    out = tmp / f"pusan-freight-{chain_id}.request.json"
    made = run(["genesis", "request", "--chain-id", chain_id, "--org", "pusan-freight",
                "--name", "Pusan Freight", "--kind", "carrier", "--city", "Busan",
                "--no-validator", "--member", "crew=carrier", "--home", str(tmp / chain_id),
                "--out", str(out), "--no-passphrase"])  # fmt: skip
    assert made.exit_code == 0, message(made)
    return out


def _register(server: ServerThread, keys: dict[str, str], genesis: str, *how: str) -> Result:
    return run(["tx", "identity", "register-org", *how, "--key", keys["customs-admin"],
                "--node", server.url, "--genesis", genesis, "--wait", "--json"])  # fmt: skip


def test_the_organisation_of_a_request_is_registered(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    path = _request(tmp_path)
    result = _register(server, keys, genesis_file, "--request", str(path))
    assert result.exit_code == 0, message(result)
    events = json.loads(result.stdout)["receipt"]["events"]
    members = json.loads(path.read_text())["organisation"]["members"]
    registered = {e["attrs"]["public_key"] for e in events if e["type"].endswith("registered")
                  and "public_key" in e["attrs"]}  # fmt: skip
    assert registered == {m["public_key"] for m in members}
    assert any(e["attrs"].get("org") == "pusan-freight" for e in events)


def test_a_changed_or_foreign_request_sends_nothing(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    changed = _request(tmp_path)
    doc = json.loads(changed.read_text())
    doc["organisation"]["members"][0]["roles"] = ["admin", "carrier"]  # not what was signed
    changed.write_text(json.dumps(doc))
    foreign = _request(tmp_path, "another-chain")
    for path, why in ((changed, "signature"), (foreign, "another-chain")):
        result = _register(server, keys, genesis_file, "--request", str(path))
        assert result.exit_code == 1 and why in message(result), message(result)
    both = _register(server, keys, genesis_file, "--request", str(foreign), "--file", str(foreign))
    assert both.exit_code == 1 and "exactly one of" in message(both)
    again = _register(server, keys, genesis_file, "--request", str(_request(tmp_path / "x")))
    assert again.exit_code == 0, "nothing of the refused ones was registered"
