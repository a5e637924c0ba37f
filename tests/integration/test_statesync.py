"""Joining by state sync, with real node processes on loopback (issue 21).

Four validators take a snapshot every 5 heights; then they are restarted with no new
snapshots (``interval = 0``: the ones on disk are still served), so the test can spoil
the files a peer serves without racing a new snapshot. Three new nodes join with
``devnet join --state-sync``:

* every peer serves a corrupt chunk: each is named in one line, the node gives up on
  state sync and catches up by blocks from genesis — it does not stop;
* one peer describes its snapshot with a forged certificate and two have deleted the
  snapshot they still list: each is named, the last peer serves it, the node joins;
* all honest: the node joins at the snapshot's height, answers proofs from there, and
  for an older height says it has no state before it (API 410 ``no_state_before``, and
  the CLI's message); ``audit verify --home`` of its store says it cannot start from
  genesis.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from devnet import join as devnet_join
from devnet import processes
from devnet.layout import Network, NodeEntry
from ledger.encoding import decode, encode
from node.config import Home
from tests.integration.netkit import configure, running_network
from tests.unit.cli.kit import message, run

INTERVAL = 5


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    home = str(tmp_path_factory.mktemp("statesync") / "net")
    with running_network(home, settings={"snapshots.interval": INTERVAL}) as net:
        assert processes.wait_for_height(net, 3 * INTERVAL + 1, 90), "no progress"
        processes.stop_all(net)
        for entry in net.nodes:  # keep the snapshots on disk as they are
            configure(entry, {"snapshots.interval": 0})
            processes.start_node(entry)
        net.save()
        assert processes.wait_for_height(net, 3 * INTERVAL + 3, 60), "no progress"
        yield net


def _newest(entry: NodeEntry) -> str:
    root = Home(entry.home).snapshots
    return os.path.join(root, max((d for d in os.listdir(root) if d.isdigit()), key=int))


def _join(net: Network, name: str) -> tuple[NodeEntry, str]:
    entry = devnet_join.join(net, name, state_sync=True)
    tip = max(processes.node_status(n)["height"] for n in net.nodes[:4])  # type: ignore[index]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = processes.node_status(entry)
        if status is not None and status["height"] >= tip:
            break
        assert processes.is_running(entry.pid), _log(entry)
        time.sleep(0.3)
    else:
        raise AssertionError(f"{name} did not reach {tip}:\n{_log(entry)[-3000:]}")
    return entry, _log(entry)


def _log(entry: NodeEntry) -> str:
    with open(os.path.join(entry.home, "node.log"), encoding="utf-8") as f:
        return f.read()


def _log_once(entry: NodeEntry, line: str, timeout_s: float = 10.0) -> str:
    """The node's log once it holds ``line``: a node at the tip logs "caught up" at its
    next once-a-second sync check, not with the block that got it there."""
    deadline = time.monotonic() + timeout_s
    while line not in (text := _log(entry)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return text


def _spoil(path: str, change: bytes) -> bytes:
    with open(path, "rb") as f:
        before = f.read()
    with open(path, "wb") as f:
        f.write(change)
    return before


def test_corrupt_chunks_from_every_peer_fall_back_to_block_sync(network: Network) -> None:
    saved = {}
    for entry in network.nodes[:4]:
        part = os.path.join(_newest(entry), "part-1")
        with open(part, "rb") as f:
            data = f.read()
        saved[part] = _spoil(part, data[:-1] + bytes([data[-1] ^ 1]))
    try:
        entry, text = _join(network, "joiner-a")
    finally:
        for part, data in saved.items():
            _spoil(part, data)
    for validator in network.nodes[:4]:
        assert f"peer {validator.name} served chunk 0 of snapshot" in text
    assert text.count("cityledger.statesync: state sync: peer") == 4
    assert "no snapshot could be had from peers; catching up by blocks" in text
    status = processes.node_status(entry)
    assert status is not None and status["state_sync"]["base_height"] == 0


def test_a_forged_certificate_and_deleted_snapshots_are_named_and_passed_over(
    network: Network,
) -> None:
    forger, *pruned, honest = network.nodes[:4]
    description = os.path.join(_newest(forger), "part-0")
    with open(description, "rb") as f:
        obj = decode(f.read())
    assert isinstance(obj, dict)
    cert = dict(obj["certificate"])  # type: ignore[arg-type]
    cert["round"] = cert["round"] + 1  # type: ignore[operator]
    saved = {description: _spoil(description, encode({**obj, "certificate": cert}))}
    for entry in pruned:  # still listed (in memory), no longer on disk
        for name in os.listdir(_newest(entry)):
            part = os.path.join(_newest(entry), name)
            saved[part] = _spoil(part, b"")
            os.unlink(part)
    try:
        entry, text = _join(network, "joiner-b")
    finally:
        for part, data in saved.items():
            with open(part, "wb") as f:
                f.write(data)
    height = int(os.path.basename(_newest(honest)))
    assert f"peer {forger.name} described snapshot {height} wrongly" in text
    assert "does not verify from genesis" in text
    for entry_ in pruned:
        assert f"peer {entry_.name} no longer holds" in text
    assert f"state of height {height} written" in text
    status = processes.node_status(entry)
    assert status is not None and status["state_sync"]["base_height"] == height


def test_a_state_synced_node_answers_from_its_base_and_refuses_older_heights(
    network: Network,
) -> None:
    entry, _ = _join(network, "joiner-c")
    status = processes.node_status(entry)
    assert status is not None
    base = status["state_sync"]["base_height"]
    assert base >= 3 * INTERVAL and status["state_sync"]["phase"] == "done"
    assert "caught up at height" in _log_once(entry, "caught up at height")
    org = "busan-customs"
    ok = _get(entry.url + f"/v1/orgs?height={base}")
    assert ok[0] == 200, ok
    code, body = _get(entry.url + f"/v1/orgs?height={base - 1}")
    assert code == 410 and body["error"]["code"] == "no_state_before", body
    assert f"no state, blocks or receipts before height {base}" in body["error"]["message"]
    genesis = Home(entry.home).genesis
    result = run(["org", "find", org, "--height", str(base - 1), "--node", entry.url,
                  "--genesis", genesis])  # fmt: skip
    assert result.exit_code != 0
    assert f"before height {base}" in message(result)
    result = run(["org", "find", "Busan", "--height", str(base), "--node", entry.url,
                  "--genesis", genesis, "--json"])  # fmt: skip
    assert result.exit_code == 0, message(result)
    assert json.loads(result.stdout)["organisations"]
    processes.stop_node(entry)  # an audit from genesis is refused, in one line
    result = run(["audit", "verify", "--home", entry.home])
    assert result.exit_code != 0
    assert f"joined by state sync at height {base}" in message(result)


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
