"""``cityledger bench statesync``: a new node joins by state sync, and by replaying blocks.

1. a network of ``validators`` takes a state snapshot every ``interval`` heights
   (``[snapshots] interval``) and commits ``txs`` transactions of the workload (at
   ``rate``, open loop);
2. once they are committed, the idle network's heartbeat blocks (every 0.5 s here) take
   the chain to the next multiple of ``interval``, whose snapshot is then of the state the
   load left; once every validator holds it, a new node joins with ``devnet join
   --state-sync``: the time from its start until its height reaches the tip (as it was at
   the start) is ``snapshot_join_s``;
3. it is stopped, and another new node joins by replaying every block from genesis
   (``devnet join``): ``replay_join_s``.

Both joiners are observers with fresh keys and empty stores, started the same way; the
network is idle while they join (heartbeat blocks only).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from benchmarks.cluster import BenchError, Cluster, NetworkOptions, running, sample_pid
from benchmarks.driver import Driver, Step
from benchmarks.run import drain, run_async, setup_loaded
from benchmarks.workload import Workload, bench_workload
from devnet import join as devnet_join
from devnet import processes
from devnet.layout import NodeEntry
from node.config import Home

POLL_S = 0.1
HEARTBEAT_MS = 500


@dataclass
class StateSyncOptions(NetworkOptions):
    txs: int = 20_000
    rate: float = 1500.0
    interval: int = 50
    timeout_s: float = 1800.0
    drain_s: float = 600.0


def run_statesync(opts: StateSyncOptions, console: Console) -> dict[str, Any]:
    work = bench_workload(opts.validators, opts.txs, name=opts.workload, seed=opts.seed)
    console.print(
        f"[bold]workload[/] {opts.workload}: {len(work.items):,} transactions "
        f"({work.valid_count():,} valid); a snapshot every {opts.interval} heights"
    )
    # heartbeat blocks every 0.5 s when idle, so the chain soon reaches the next multiple
    # of the interval after the load: the snapshot is of the tip's state
    opts.settings = (
        f"consensus.empty_block_interval_ms={HEARTBEAT_MS}",
        *opts.settings,
        f"snapshots.interval={opts.interval}",
    )
    with running(opts) as cluster:
        loaded, txs, accepted = run_async(_load(opts, cluster, work, console))
        due = -(-loaded // opts.interval) * opts.interval
        snapshot = _wait_snapshot(cluster, due, opts.timeout_s)
        tip = max(Cluster.height(n) for n in cluster.nodes)
        chain_txs = int((processes.node_status(cluster.nodes[0]) or {}).get("log_size", 0))
        console.print(
            f"load committed by height {loaded} ({txs:,} transactions); snapshot at height "
            f"{snapshot}; tip {tip}"
        )
        synced = _join(cluster, "statesync-joiner", tip, opts.timeout_s, state_sync=True)
        console.print(f"joined by state sync in {synced['join_s']} s")
        replayed = _join(cluster, "replay-joiner", tip, opts.timeout_s, state_sync=False)
        console.print(f"joined by replaying blocks in {replayed['join_s']} s")
    return {
        "tip": tip,
        "load_height": loaded,
        "txs": txs,
        "chain_txs": chain_txs,
        "accepted": accepted,
        "snapshot_height": snapshot,
        "snapshot_join_s": synced["join_s"],
        "replay_join_s": replayed["join_s"],
        "ratio": round(synced["join_s"] / max(1e-9, replayed["join_s"]), 3),
        "state_sync": synced,
        "replay": replayed,
        "options": opts.recorded(),
    }


async def _load(
    opts: StateSyncOptions, cluster: Cluster, work: Workload, console: Console
) -> tuple[int, int, int]:
    """Commit the workload; (tip, transactions committed, transactions the nodes accepted
    of those offered: above what the network commits, some are refused)."""
    urls = [n.url for n in cluster.nodes]
    async with setup_loaded(urls, work, console) as (http, watches):
        base = max(w.height for w in watches)
        driver = Driver(http, urls, work.items)
        log = await driver.run([Step(opts.rate)], lambda: max(w.txs_since(base) for w in watches))
        await drain(watches, base, log.accepted(), opts.drain_s, idle_s=60.0)
        await asyncio.sleep(1.0)
        tip = max(w.height for w in watches)
        committed = sum(n for h, n in watches[0].tx_count.items() if h > 0)
        return tip, committed, log.accepted()


def _wait_snapshot(cluster: Cluster, height: int, timeout_s: float) -> int:
    """Wait until every validator holds one snapshot of ``height`` or later (complete on
    disk), and return the lowest such height. Not ``height`` itself: a node that is still
    writing one snapshot when the next is due skips that one (a snapshot of a large state,
    paced to a quarter of a core, can take longer than ``interval`` heartbeat blocks)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        common = set.intersection(*(_snapshot_heights(n.home) for n in cluster.nodes))
        due = sorted(h for h in common if h >= height)
        if due:
            return due[0]
        time.sleep(0.5)
    raise BenchError(
        f"no snapshot of height {height} or later on every validator:\n" + cluster.log_tail()
    )


def _snapshot_heights(home: str) -> set[int]:
    """The heights of the snapshots complete on disk in a node ``home``."""
    root = Home(home).snapshots
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return set()
    return {int(name) for name in names if name.isdigit()}


def _join(
    cluster: Cluster, name: str, tip: int, timeout_s: float, *, state_sync: bool
) -> dict[str, Any]:
    """Start a new node; seconds until its height reaches ``tip``; then stop it."""
    began = time.monotonic()
    entry = devnet_join.join(cluster.network, name, state_sync=state_sync)
    try:
        height, status = _watch(cluster, entry, tip, began + timeout_s)
        done = time.monotonic()
        use = sample_pid(entry.pid)
    finally:
        processes.stop_node(entry)
        cluster.network.save()
    if height < tip:
        raise BenchError(f"{name} reached {height} of {tip} in {timeout_s:.0f} s")
    return {
        "node": name,
        "join_s": round(done - began, 2),
        "state_sync": (status or {}).get("state_sync"),
        "cpu_s": None if use is None else round(use.cpu_s, 1),
        "peak_rss_mb": None if use is None else round(use.peak_rss_mb, 1),
    }


def _watch(
    cluster: Cluster, entry: NodeEntry, tip: int, deadline: float
) -> tuple[int, dict[str, Any] | None]:
    height, status = 0, None
    while time.monotonic() < deadline:
        status = processes.node_status(entry)
        if status is not None:
            height = int(status.get("height", 0))
            if height >= tip:
                break
        if not processes.is_running(entry.pid):
            raise BenchError(f"{entry.name} exited while joining:\n" + cluster.log_tail())
        time.sleep(POLL_S)
    return height, status
