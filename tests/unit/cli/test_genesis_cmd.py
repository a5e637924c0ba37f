"""``cityledger genesis ...`` and the genesis checks of ``node init``: keys stay private,
refusals are one line and change nothing, and devnet homes carry their admin keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devnet import layout
from ledger.founding import GenesisFile
from ledger.keyfile import read_key_file
from node.config import Home
from tests.unit.cli.kit import message, run

CHAIN = "cli-founding"


def _request(tmp: Path, i: int, *extra: str) -> tuple[Path, Path]:
    home, out = tmp / f"agency-{i}", tmp / f"req-{i}.json"
    args = ["genesis", "request", "--chain-id", CHAIN, "--org", f"agency-{i}",
            "--name", f"Agency {i}", "--city", "Busan", "--p2p", f"127.0.0.1:{27000 + i}",
            "--home", str(home), "--out", str(out), "--no-passphrase", *extra]  # fmt: skip
    result = run(args)
    assert result.exit_code == 0, message(result)
    return home, out


def _founded(tmp: Path, n: int = 4) -> tuple[Path, list[Path]]:
    homes, requests = zip(*(_request(tmp, i) for i in range(n)), strict=True)
    draft = tmp / "genesis.json"
    result = run(["genesis", "assemble", *map(str, requests), "--chain-id", CHAIN,
                  "--time-ms", "1000", "--out", str(draft)])  # fmt: skip
    assert result.exit_code == 0, message(result)
    return draft, list(homes)


def _sign(draft: Path, home: Path, org: str) -> None:
    result = run(["genesis", "sign", str(draft), "--key", str(home / "keys" / f"{org}-admin.json")])
    assert result.exit_code == 0, message(result)


def _one_line_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip().startswith("error")]
    assert len(lines) == 1, text
    return lines[0]


def test_request_makes_private_keys_and_prints_none_of_them(tmp_path: Path) -> None:
    home, out = _request(tmp_path, 0, "--member", "officer=customs")
    node_key = read_key_file(str(home / "node_key.json"))
    admin = read_key_file(str(home / "keys" / "agency-0-admin.json"))
    officer = read_key_file(str(home / "keys" / "agency-0-officer.json"))
    for path in (home / "node_key.json", home / "keys" / "agency-0-admin.json"):
        assert os.stat(path).st_mode & 0o777 == 0o600
    text = out.read_text() + run(["genesis", "verify-request", str(out)]).output
    for key in (node_key, admin, officer):
        assert key.seed.hex() not in text
        assert key.public_key.hex() in out.read_text()
    assert "every signature verifies" in text


def test_a_refused_request_makes_no_key(tmp_path: Path) -> None:
    home = tmp_path / "agency"
    for bad in (["--member", "officer=mayor"], ["--p2p", "nowhere"], ["--org", "Not An Id"]):
        args = ["genesis", "request", "--chain-id", CHAIN, "--org", "agency-0", "--name", "A",
                "--city", "Busan", "--p2p", "127.0.0.1:1", "--home", str(home),
                "--out", str(tmp_path / "r.json"), "--no-passphrase", *bad]  # fmt: skip
        result = run(args)
        assert result.exit_code != 0
        assert not home.exists() and not (tmp_path / "r.json").exists()


def test_verify_shows_who_signed_and_refuses_until_all_have(tmp_path: Path) -> None:
    draft, homes = _founded(tmp_path)
    for i, home in enumerate(homes[:3]):
        _sign(draft, home, f"agency-{i}")
    result = run(["genesis", "verify", str(draft), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [s["org"] for s in report["signed"]] == ["agency-0", "agency-1", "agency-2"]
    assert report["unsigned"] == ["agency-3"]
    assert report["hash"] == GenesisFile.load(str(draft)).genesis.hash.hex()
    _sign(draft, homes[3], "agency-3")
    ok = run(["genesis", "verify", str(draft)])
    assert ok.exit_code == 0, message(ok)
    assert "this genesis can found the network" in ok.output


def test_node_init_refuses_an_unsigned_genesis_and_creates_nothing(tmp_path: Path) -> None:
    draft, homes = _founded(tmp_path)
    node_home = tmp_path / "node-0"
    args = ["node", "init", "--home", str(node_home), "--genesis", str(draft),
            "--key", str(homes[0] / "node_key.json")]  # fmt: skip
    result = run(args)
    assert result.exit_code == 1
    assert "not signed by founding organisation(s) agency-0" in _one_line_error(message(result))
    assert not node_home.exists()
    for i, home in enumerate(homes):
        _sign(draft, home, f"agency-{i}")
    result = run(args)
    assert result.exit_code == 0, message(result)
    config = Home(str(node_home)).load_config()
    assert sorted(config.p2p.peers) == [f"127.0.0.1:{27000 + i}" for i in (1, 2, 3)]


def test_assemble_refuses_a_duplicate_organisation_in_one_line(tmp_path: Path) -> None:
    _, first = _request(tmp_path, 0)
    twin_home = tmp_path / "twin"
    args = ["genesis", "request", "--chain-id", CHAIN, "--org", "agency-0", "--name", "Twin",
            "--city", "Busan", "--p2p", "127.0.0.1:1", "--home", str(twin_home),
            "--out", str(tmp_path / "twin.json"), "--no-passphrase"]  # fmt: skip
    assert run(args).exit_code == 0
    out = tmp_path / "draft.json"
    result = run(["genesis", "assemble", str(first), str(tmp_path / "twin.json"),
                  "--chain-id", CHAIN, "--out", str(out)])  # fmt: skip
    assert result.exit_code != 0 and not out.exists()
    assert "organisation id 'agency-0' is in both" in message(result)


def test_devnet_marks_its_genesis_and_writes_the_agencies_admin_keys(tmp_path: Path) -> None:
    network = layout.generate(str(tmp_path / "net"), 4, base_port=39800, genesis_time_ms=1)
    genesis = GenesisFile.load(Home(network.nodes[0].home).genesis).genesis
    assert genesis.devnet
    assert all(genesis.org_of_validator(v.public_key) for v in genesis.validators.validators)
    admin = read_key_file(str(tmp_path / "net" / "keys" / "busan-customs-admin.json"))
    org = next(o for o in genesis.organisations if o.id == "busan-customs")
    assert admin.public_key in {m.public_key for m in org.members if "admin" in m.roles}
    assert not (tmp_path / "net" / "keys" / "hanbit-electronics-admin.json").exists()  # a trader
    verified = run(["genesis", "verify", Home(network.nodes[0].home).genesis])
    assert verified.exit_code == 0, message(verified)


def test_node_start_refuses_a_genesis_changed_after_signing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.process

    draft, homes = _founded(tmp_path)
    for i, home in enumerate(homes):
        _sign(draft, home, f"agency-{i}")
    node_home = Home(str(tmp_path / "node-0"))
    init = run(["node", "init", "--home", node_home.path, "--genesis", str(draft),
                "--key", str(homes[0] / "node_key.json")])  # fmt: skip
    assert init.exit_code == 0, message(init)
    started: list[str] = []

    async def serve(path: str, **kwargs: object) -> None:
        started.append(path)

    monkeypatch.setattr(node.process, "serve", serve)
    assert run(["node", "start", "--home", node_home.path]).exit_code == 0
    doc = json.loads(Path(node_home.genesis).read_text())
    doc["consensus"]["timeout_propose_ms"] = 1  # the body nobody signed
    Path(node_home.genesis).write_text(json.dumps(doc))
    result = run(["node", "start", "--home", node_home.path])
    assert result.exit_code == 1 and started == [node_home.path]
    assert "the body was changed after signing" in _one_line_error(message(result))


def test_node_init_takes_a_genesis_already_saved_in_the_home(tmp_path: Path) -> None:
    """An agency that saved the signed genesis.json in the directory of its keys (the
    home, as docs/operations.md has it) runs init there: the file is kept, not an error."""
    draft, homes = _founded(tmp_path)
    for i, home in enumerate(homes):
        _sign(draft, home, f"agency-{i}")
    in_home = homes[0] / "genesis.json"
    in_home.write_bytes(draft.read_bytes())
    result = run(["node", "init", "--home", str(homes[0]), "--genesis", str(in_home),
                  "--key", str(homes[0] / "node_key.json")])  # fmt: skip
    assert result.exit_code == 0, message(result)
    assert in_home.read_bytes() == draft.read_bytes()
    assert Home(str(homes[0])).load_config().p2p.peers
