"""``cityledger bench catchup``: how fast a restarted validator gets back to the tip.

1. a network of ``validators`` (at least 4, so that the others keep a quorum) runs the
   setup phases;
2. the last validator is stopped (SIGTERM, by pid);
3. the others commit ``txs`` transactions of the workload (at ``rate``, open loop);
4. the stopped validator is started again on its old store; its ``/v1/status`` is
   polled until its height reaches the others' tip, with no new load meanwhile.

Figures: time to reach the tip (from the restart command), of which start-up (until
its API answers) and catching up proper; catch-up rate in tx/s and blocks/s over the
catching-up part; the node's own reported sync rates; its CPU seconds and peak RSS.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from benchmarks.cluster import BenchError, Cluster, NetworkOptions, running, sample_pid
from benchmarks.driver import Driver, Step
from benchmarks.profile import Profiler, summary
from benchmarks.run import drain, run_async, setup_loaded
from benchmarks.workload import Workload, bench_workload
from devnet import processes
from devnet.layout import NodeEntry

POLL_S = 0.1


@dataclass
class CatchupOptions(NetworkOptions):
    txs: int = 100_000
    rate: float = 2000.0
    timeout_s: float = 900.0
    drain_s: float = 600.0  # for the others to commit everything before the restart
    profile_dir: str | None = None


def run_catchup(opts: CatchupOptions, console: Console) -> dict[str, Any]:
    if opts.validators < 4:
        raise BenchError("catch-up needs at least 4 validators (3 keep the quorum)")
    work = bench_workload(opts.validators - 1, opts.txs, name=opts.workload, seed=opts.seed)
    console.print(
        f"[bold]workload[/] {opts.workload}: {len(work.items):,} transactions "
        f"({work.valid_count():,} valid)"
    )
    with running(opts) as cluster:
        doc = run_async(_catchup(opts, cluster, work, console))
    doc["options"] = opts.recorded()
    return doc


async def _catchup(
    opts: CatchupOptions, cluster: Cluster, work: Workload, console: Console
) -> dict[str, Any]:
    urls = [n.url for n in cluster.nodes]
    lagger = len(urls) - 1
    async with setup_loaded(urls[:lagger], work, console) as (http, watches):
        await asyncio.sleep(1.0)
        if not cluster.wait_height(watches[0].height, 30, [lagger]):
            raise BenchError("the last validator did not follow the setup")
        stopped_at = Cluster.height(cluster.nodes[lagger])
        cluster.stop(lagger)
        console.print(
            f"stopped {cluster.nodes[lagger].name} at height {stopped_at}; "
            f"committing {len(work.items):,} transactions without it…"
        )
        base = max(w.height for w in watches)
        # The stopped validator's clients go to the others, as they would fail over
        # (bound to it, their transactions had no node to go to).
        driver = Driver(http, urls[:lagger], work.items, node_map=lambda node: node % lagger)
        log = await driver.run([Step(opts.rate)], lambda: max(w.txs_since(base) for w in watches))
        await drain(watches, base, log.accepted(), opts.drain_s, idle_s=60.0)
        await asyncio.sleep(1.0)
        tip = max(w.height for w in watches)
        txs = sum(n for h, n in watches[0].tx_count.items() if h > stopped_at)
        committed = max(w.txs_since(base) for w in watches)
    console.print(
        f"tip {tip} ({txs:,} transactions since height {stopped_at}; "
        f"{committed:,} of {log.accepted():,} accepted committed); restarting…"
    )
    return await _restart_and_watch(opts, cluster, lagger, stopped_at, tip, txs) | {
        "committed_while_down": committed,
        "accepted_while_down": log.accepted(),
        "pending_at_restart": log.accepted() - committed,
        "down_committed_tps": round(committed / max(1e-9, log.ended - log.began), 1),
    }


async def _restart_and_watch(
    opts: CatchupOptions, cluster: Cluster, lagger: int, stopped_at: int, tip: int, txs: int
) -> dict[str, Any]:
    entry = cluster.nodes[lagger]
    began = time.monotonic()
    cluster.start(lagger)
    profiler = None
    if opts.profile_dir and entry.pid is not None:
        profiler = Profiler(opts.profile_dir, {entry.name: entry.pid})
        profiler.start()
    try:
        height, api_up, moving, reported = await _watch(opts, cluster, entry, stopped_at, tip)
    finally:
        if profiler is not None:
            profiler.stop()
    done = time.monotonic()
    if height < tip:
        raise BenchError(f"{entry.name} reached {height} of {tip} in {opts.timeout_s:.0f} s")
    use = sample_pid(entry.pid)
    start_s = (api_up or done) - began
    catch_s = max(1e-3, done - (api_up or began))
    blocks = tip - stopped_at
    doc = {
        "node": entry.name,
        "stopped_at": stopped_at,
        "tip": tip,
        "blocks": blocks,
        "txs": txs,
        "time_to_tip_s": round(done - began, 2),
        "startup_s": round(start_s, 2),
        "catchup_s": round(catch_s, 2),
        "catchup_tps": round(txs / catch_s, 1),
        "catchup_blocks_per_s": round(blocks / catch_s, 2),
        "first_progress_s": None if moving is None else round(moving - began, 2),
        "reported_txs_per_s_max": reported[0],
        "reported_blocks_per_s_max": reported[1],
        "cpu_s": None if use is None else round(use.cpu_s, 1),
        "peak_rss_mb": None if use is None else round(use.peak_rss_mb, 1),
    }
    if profiler is not None:
        doc["profile"] = {entry.name: summary(profiler.file(entry.name))}
    return doc


async def _watch(
    opts: CatchupOptions, cluster: Cluster, entry: NodeEntry, stopped_at: int, tip: int
) -> tuple[int, float | None, float | None, tuple[int, int]]:
    """Poll the restarted node until it reaches ``tip`` (or the timeout)."""
    began = time.monotonic()
    api_up: float | None = None
    moving: float | None = None
    reported_tps = reported_bps = 0
    deadline = began + opts.timeout_s
    height = stopped_at
    while time.monotonic() < deadline:
        status = processes.node_status(entry)
        now = time.monotonic()
        if status is not None:
            api_up = api_up or now
            height = int(status.get("height", height))
            sync = status.get("sync") or {}
            reported_tps = max(reported_tps, int(sync.get("txs_per_s") or 0))
            reported_bps = max(reported_bps, int(sync.get("blocks_per_s") or 0))
            if height > stopped_at and moving is None:
                moving = now
            if height >= tip:
                break
        if not processes.is_running(entry.pid):
            raise BenchError(f"{entry.name} exited while catching up:\n" + cluster.log_tail())
        await asyncio.sleep(POLL_S)
    return height, api_up, moving, (reported_tps, reported_bps)
