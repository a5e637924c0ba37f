"""What someone on the path between validators gets now that links are TLS 1.3:
no plaintext of any record, nothing from a plaintext client, no memory from a flood
of unauthenticated connections; and a validator rotates its TLS key while the
network keeps committing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from devnet.demo import demo_phases
from node.config import Home
from tests.e2e.conftest import ClusterFactory
from tests.e2e.hostile import rss_bytes as rss
from tests.e2e.launcher import environment

FLOOD_CONNECTIONS = 100
FLOOD_BYTES_EACH = 256 * 1024  # of a WebSocket frame claiming 16 MiB, before any handshake
MAX_GROWTH = 20 * 1024 * 1024


def _first_declaration(chain_id: str) -> tuple[list[bytes], str, str]:
    """The demo's first two phases (encoded) and, from its first shipment declaration
    among them, the shipment id and first goods description."""
    phases = demo_phases(chain_id)[:2]
    txs = [tx for phase in phases for tx in phase]
    declare = next(tx for tx in txs if tx.kind == "shipment.declare")
    payload = declare.payload
    assert isinstance(payload, dict) and isinstance(payload["goods"], list)
    goods = payload["goods"][0]
    assert isinstance(goods, dict)
    return [tx.encode() for tx in txs], str(payload["id"]), str(goods["description"])


def _submit(url: str, txs: list[bytes]) -> None:
    body = json.dumps({"txs": [t.hex() for t in txs]}).encode()
    request = urllib.request.Request(
        url + "/v1/txs", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status < 300


@pytest.mark.full  # make test: tests/unit/node/test_peer_tls.py
def test_a_recording_relay_sees_no_plaintext_and_a_rotated_tls_key_keeps_the_chain_going(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(transport="relay")
    relay = cluster.relay
    assert relay is not None
    relay.capture = True
    txs, shipment_id, description = _first_declaration(cluster.chain_id)
    first = cluster.names[0]
    _submit(cluster.entry(first).url, txs[:50])
    time.sleep(1.0)
    _submit(cluster.entry(first).url, txs[50:])
    target = cluster.max_height() + 3
    assert cluster.wait(lambda: cluster.min_height() >= target, 30), cluster.logs()
    captured = relay.captured()
    assert relay.stats().tls_streams > 0 and len(captured) > 50_000
    for secret in (shipment_id, description, "Fault suite"):
        assert secret.encode() not in captured, f"{secret!r} crossed the relay in plaintext"

    # One validator rotates its TLS key; its links are then cut and remade (new links
    # use the new key) and the network keeps committing.
    rotated = cluster.names[1]
    home = cluster.entry(rotated).home
    rotate = subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "rotate-tls-key", "--home", home],
        env=environment(),
        capture_output=True,
        timeout=60,
    )
    assert rotate.returncode == 0, rotate.stderr.decode()
    assert b"sent SIGHUP" in rotate.stdout
    assert cluster.wait(lambda: "TLS key reloaded" in cluster.log_text(rotated), 10)
    relay.isolate(rotated)
    time.sleep(1.0)
    relay.heal()
    height = cluster.max_height()
    assert cluster.wait(lambda: cluster.min_height() >= height + 3, 30), cluster.logs()
    assert cluster.wait(lambda: cluster.peer_count(rotated) >= 3, 20), cluster.logs()


def test_a_plaintext_client_gets_nothing_and_a_preauth_flood_costs_no_memory(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster()
    name = cluster.names[0]
    host, port = cluster.entry(name).p2p.rsplit(":", 1)
    pid = cluster.procs[name].pid
    upgrade = (
        b"GET /p2p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as plain:
        plain.sendall(upgrade)
        try:
            answer = plain.recv(65536)
        except OSError:
            answer = b""
    assert answer == b"", f"a plaintext client got {answer[:80]!r}"

    before = rss(pid)
    frame = b"\x82\xff" + (16 * 1024 * 1024).to_bytes(8, "big") + bytes(4)
    chunk = bytes(64 * 1024)
    deadline = time.monotonic() + 60
    sockets: list[socket.socket] = []
    try:
        for _ in range(FLOOD_CONNECTIONS):
            s = socket.create_connection((host, int(port)), timeout=2)
            sockets.append(s)
            try:
                s.sendall(upgrade + frame)
                for _ in range(FLOOD_BYTES_EACH // len(chunk)):
                    s.sendall(chunk)
            except OSError:
                pass  # the node closed it: what it should do
            if time.monotonic() > deadline:
                break
        time.sleep(1.0)
        growth = rss(pid) - before
    finally:
        for s in sockets:
            s.close()
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB"
    assert cluster.wait(lambda: cluster.height(name) > 0 and cluster.running(name), 5)
    assert os.path.exists(Home(cluster.entry(name).home).tls_cert)  # made by devnet.layout
