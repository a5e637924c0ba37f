"""One node of a real network prunes blocks ([storage] block_keep_heights), the others
keep every block: the chain goes on, and the pruning node answers old heights with
``block_pruned`` (410) while it still serves their certified headers."""

from __future__ import annotations

import urllib.error
import urllib.request

from devnet import processes
from tests.integration.netkit import get, running_network

KEEP = 2  # = [snapshots] interval × keep below: the least the config allows
SETTINGS = {"snapshots.interval": 2, "snapshots.keep": 1}


def _status_of(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_block_pruning_node_in_a_network_of_archive_nodes(tmp_path: object) -> None:
    with running_network(
        str(tmp_path),
        empty_block_interval_ms=200,
        settings=SETTINGS,
        node_settings={0: {"storage.block_keep_heights": KEEP}},
    ) as net:
        assert processes.wait_for_height(net, KEEP + 3, 30), "the chain did not go on"
        pruner, archive = net.nodes[0], net.nodes[1]
        oldest = get(pruner, "/v1/status")["oldest_block_height"]
        assert oldest > 1 and get(archive, "/v1/status")["oldest_block_height"] == 1
        code, body = _status_of(f"{pruner.url}/v1/blocks/1")
        assert code == 410 and "block_pruned" in body
        assert get(archive, "/v1/blocks/1")["height"] == 1
        cert = get(pruner, "/v1/blocks/1/certificate")
        assert cert["block_hash"] == get(archive, "/v1/blocks/1")["hash"]
        assert get(pruner, f"/v1/blocks/{oldest}")["height"] == oldest
