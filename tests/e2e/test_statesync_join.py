"""A new node joins by state sync under load (issue 21), in real processes.

Four validators take a snapshot every 10 heights while the fault suite's load runs
(bounded: 600 transactions, 60 s). A fifth node, laid out and announced as ``devnet join``
does, starts with ``node start --state-sync``: it fetches the newest snapshot, checks it
from genesis, and catches up the blocks after it while the load goes on. Then:

* the validators pass every invariant of the fault suite (no fork, nothing acknowledged
  lost, no double-sign; the audit from genesis is left to the other scenarios: it takes
  minutes on two cores);
* the newcomer's chain from its base height to its head is the validators' block for
  block, and its state root at its head is theirs;
* for a height before its base it answers 410 ``no_state_before``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest

from devnet import join as devnet_join
from ledger.keyfile import read_key_file
from node.config import Home
from tests.e2e.conftest import ClusterFactory
from tests.e2e.scenario import finish, start_load

INTERVAL = 10


@pytest.mark.full  # make test: tests/integration/test_statesync.py joins
def test_a_new_node_joins_by_state_sync_under_load(make_cluster: ClusterFactory, seed: int) -> None:
    cluster = make_cluster(settings={"snapshots.interval": INTERVAL})
    validators = list(cluster.names)
    load = start_load(cluster, seed, rate_per_s=10.0, max_txs=600, max_seconds=60.0)
    assert cluster.wait(lambda: cluster.min_height(validators) >= 2 * INTERVAL + 2, 90), (
        f"no progress under load: {cluster.heights()}\n{cluster.logs(20)}"
    )
    newcomer = "seoul-4"
    entry = devnet_join.join(cluster.net, newcomer, start=False)
    cluster.keys[newcomer] = read_key_file(Home(entry.home).key).public_key
    cluster.start_node(newcomer, extra_args=("--state-sync",))
    took = cluster.wait_caught_up(newcomer, 120)
    assert took is not None, f"{newcomer} did not catch up\n{cluster.log_text(newcomer)[-3000:]}"
    status = cluster.status(newcomer)
    assert status is not None
    base = status["state_sync"]["base_height"]
    assert base >= INTERVAL and base % INTERVAL == 0, status["state_sync"]
    log_text = cluster.log_text(newcomer)
    assert f"state of height {base} written" in log_text
    assert "does not check out" not in log_text  # honest peers: nobody blamed

    summary = finish(
        cluster, load, "statesync-join-under-load", audit=False, names=validators,
        join_s=round(took, 1), base_height=base,
    )  # fmt: skip
    head = cluster.height(newcomer)
    top = min(head, summary.height)
    for height in range(base + 1, top + 1):
        mine = cluster.get(newcomer, f"/v1/blocks/{height}")["hash"]
        theirs = cluster.get(validators[0], f"/v1/blocks/{height}")["hash"]
        assert mine == theirs, f"block {height} differs on {newcomer}"
    assert top > base
    url = cluster.entry(newcomer).url + f"/v1/state/{b'validators/current'.hex()}?height={base - 1}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            raise AssertionError(f"an answer for a height before the base: {resp.status}")
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert exc.code == 410 and body["error"]["code"] == "no_state_before", body
    print(
        f"state sync under load: joined at {base} in {took:.1f} s; {os.path.basename(entry.home)}"
    )
