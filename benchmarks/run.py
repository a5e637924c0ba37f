"""``cityledger bench run``: one network, one timed workload, every figure from the same run.

Order of a run (only step 5 is timed):

1. the ceiling (Ed25519 verifications per second per core), before anything else runs;
2. the workload, generated and signed (setup phases and timed stream);
3. a fresh network of ``validators`` node processes on loopback;
4. the setup phases, each committed and its receipts checked before the next;
5. the timed phase: the open-loop driver at the offered rate (or a ramp), block
   watchers on every node, resource counters before and after, py-spy if asked;
   then a drain until every accepted transaction is committed (or it stops moving);
6. the blocks of the timed phase fetched to find where each transaction landed;
   a sample of receipts checked; figures, table, JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from rich.console import Console

from benchmarks import ceiling as ceiling_mod
from benchmarks.anon_rss import AnonSampler, add_anon_figures
from benchmarks.cluster import BenchError, Cluster, NetworkOptions, machine_busy_s, running
from benchmarks.driver import (
    BlockWatch,
    DriveLog,
    Driver,
    Step,
    fetch_blocks,
    receipt_codes,
)
from benchmarks.phases import phase_figures, phase_totals
from benchmarks.profile import Profiler, summary
from benchmarks.results import NodeUse, figures, node_use, outcome
from benchmarks.validations import validation_figures, validation_totals
from benchmarks.workload import Workload, bench_workload
from ledger.tx import Transaction
from node.api.waits import NOT_NOW, error_code, retry_after_s

SETUP_BATCH = 2000
T = TypeVar("T")
PHASE_TIMEOUT_S = 180.0
SETUP_ATTEMPTS = 60  # answers of "not now" to one setup batch before the bench gives up
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class RunOptions(NetworkOptions):
    txs: int = 20_000
    rate: float = 2000.0
    ramp: bool = False
    ramp_start: float = 500.0
    ramp_step: float = 500.0
    step_seconds: float = 10.0
    scale: int = 1
    tick_s: float = 0.05
    drain_s: float = 90.0
    check_receipts: int = 500
    profile_dir: str | None = None
    mempool_max: int | None = None

    def steps(self) -> list[Step]:
        if not self.ramp:
            return [Step(self.rate)]
        rates = [self.ramp_start + k * self.ramp_step for k in range(200)]
        return [Step(r, self.step_seconds) for r in rates if r <= self.rate] or [Step(self.rate)]


def session(limit: int = 256) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=120)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=64), timeout=timeout
    )


async def start_watches(
    http: aiohttp.ClientSession, urls: Sequence[str], stop: asyncio.Event
) -> tuple[list[BlockWatch], list[asyncio.Task[None]]]:
    watches = [BlockWatch(url) for url in urls]
    tasks = [asyncio.create_task(w.run(http, stop)) for w in watches]
    await asyncio.sleep(0.5)  # let the subscriptions settle before anything is committed
    return watches, tasks


@asynccontextmanager
async def setup_loaded(
    urls: Sequence[str], work: Workload, console: Console
) -> AsyncIterator[tuple[aiohttp.ClientSession, list[BlockWatch]]]:
    """A session and block watchers on ``urls``, once the setup phases are committed.

    The watchers are stopped when the block ends, however it ends.
    """
    stop = asyncio.Event()
    async with session() as http:
        watches, tasks = await start_watches(http, urls, stop)
        try:
            await load_setup(http, urls, work, watches[0], console)
            yield http, watches
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


async def load_setup(
    http: aiohttp.ClientSession,
    urls: Sequence[str],
    work: Workload,
    watch: BlockWatch,
    console: Console,
) -> None:
    """Submit the setup phases one after the other; each must commit without a failure."""
    node_of = {a.key.public_key: a.node for a in work.population.all_actors()}
    for number, phase in enumerate(work.setup):
        before = watch.height
        by_node: dict[int, list[Transaction]] = {}
        for tx in phase:
            by_node.setdefault(node_of.get(tx.sender, 0) % len(urls), []).append(tx)
        for node, txs in by_node.items():
            for i in range(0, len(txs), SETUP_BATCH):
                await _submit_all(http, urls[node], txs[i : i + SETUP_BATCH])
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while watch.txs_since(before) < len(phase):
            if time.monotonic() > deadline:
                raise BenchError(f"setup phase {number} did not commit in {PHASE_TIMEOUT_S} s")
            await asyncio.sleep(0.1)
        console.print(f"  setup phase {number}: {len(phase)} transactions committed")
    codes = await receipt_codes(http, urls[0], [tx.hash for p in work.setup for tx in p])
    failed = {k: v for k, v in codes.items() if k not in ("ok", "unchecked")}
    if failed:
        raise BenchError(f"setup transactions failed: {failed}")


async def _submit_all(http: aiohttp.ClientSession, url: str, txs: list[Transaction]) -> None:
    """Submit ``txs``; what the node refuses "not now" (429, or a retryable code on an
    item: its latency budget) is sent again after ``Retry-After``, in order, as a client
    would; anything else refused stops the bench."""
    for _attempt in range(SETUP_ATTEMPTS):
        status, results, retry_after = await _post_setup(http, url, txs)
        if status == 429:
            await asyncio.sleep(retry_after)
            continue
        later = [tx for tx, r in zip(txs, results, strict=False) if _not_now(r)]
        refused = [r for r in results if r.get("status") != "pending" and not _not_now(r)]
        if status != 200 or refused or len(results) != len(txs):
            why = refused[0] if refused else f"HTTP {status}, {len(results)} answers"
            raise BenchError(f"{url} refused setup transactions: {why}")
        if not later:
            return
        txs = later
        await asyncio.sleep(retry_after)
    raise BenchError(f"{url} stayed overloaded for {SETUP_ATTEMPTS} attempts of setup")


async def _post_setup(
    http: aiohttp.ClientSession, url: str, txs: list[Transaction]
) -> tuple[int, list[dict[str, Any]], float]:
    """The answer's status, its per-item results and the seconds it asked to wait."""
    import msgpack

    body = msgpack.packb({"txs": [tx.encode() for tx in txs]}, use_bin_type=True)
    headers = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}
    async with http.post(url + "/v1/txs", data=body, headers=headers) as resp:
        answer = msgpack.unpackb(await resp.read(), raw=False)
        retry_after = retry_after_s(resp.headers, default=1.0, lo=0.05, hi=30.0)
    results = answer.get("results", []) if isinstance(answer, dict) else []
    return resp.status, results, retry_after


def _not_now(result: dict[str, Any]) -> bool:
    return error_code(result) in NOT_NOW


async def drain(
    watches: Sequence[BlockWatch], base: int, accepted: int, limit_s: float, idle_s: float = 15.0
) -> None:
    """Wait until ``accepted`` transactions are committed, or nothing moves for ``idle_s``."""
    deadline = time.monotonic() + limit_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        done = max(w.txs_since(base) for w in watches)
        if done >= accepted:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > idle_s:
            return
        await asyncio.sleep(0.1)


def run_bench(opts: RunOptions, console: Console) -> dict[str, Any]:
    """The whole run; returns the JSON document (figures at the top level)."""
    console.print(
        f"[bold]ceiling[/]: measuring Ed25519 verification on {ceiling_mod.cores()} core(s)…"
    )
    ceil = ceiling_mod.measure(opts.validators)
    console.print(
        f"  {ceil.verify_per_s_per_core:,.0f} verifications/s per core "
        f"(median {ceil.median_per_s:,.0f}) → ceiling {ceil.tps:,.0f} tx/s "
        f"for {opts.validators} validator(s)"
    )
    began = time.monotonic()
    work = bench_workload(
        opts.validators, opts.txs, name=opts.workload, seed=opts.seed, scale=opts.scale
    )
    console.print(
        f"[bold]workload[/] {opts.workload}: {len(work.items):,} timed transactions "
        f"({work.valid_count():,} valid) after {sum(len(p) for p in work.setup):,} "
        f"setup transactions, signed in {time.monotonic() - began:.1f} s"
    )
    with running(opts, opts.mempool_max) as cluster:
        console.print(f"[bold]network[/]: {opts.validators} validator(s) at {cluster.home}")
        doc = run_async(_timed(opts, cluster, work, ceil, console))
    doc["options"] = opts.recorded()
    doc["workload_mix"] = dict(work.categories().most_common())
    doc["machine"] = {"cores": ceil.cores, "loadavg": os.getloadavg()}
    return doc


async def _timed(
    opts: RunOptions,
    cluster: Cluster,
    work: Workload,
    ceil: ceiling_mod.Ceiling,
    console: Console,
) -> dict[str, Any]:
    urls = [n.url for n in cluster.nodes]
    async with setup_loaded(urls, work, console) as (http, watches):
        await asyncio.sleep(1.0)
        base = max(w.height for w in watches)
        return await _measure(opts, cluster, work, ceil, http, urls, watches, base, console)


async def _measure(
    opts: RunOptions,
    cluster: Cluster,
    work: Workload,
    ceil: ceiling_mod.Ceiling,
    http: aiohttp.ClientSession,
    urls: list[str],
    watches: list[BlockWatch],
    base: int,
    console: Console,
) -> dict[str, Any]:
    names = [n.name for n in cluster.nodes]
    before, data_before = cluster.samples(), cluster.data_bytes()
    busy_before, client_before = machine_busy_s(), os.times()
    phases_before = await phase_totals(http, urls)
    validations_before = await validation_totals(http, urls)
    profiler = _start_profiler(opts, cluster)
    anon = AnonSampler({n.name: n.pid for n in cluster.nodes if n.pid})
    anon.start()
    try:
        log = await _drive(opts, work, http, urls, watches, base, console)
    finally:
        await anon.stop()
        if profiler is not None:
            profiler.stop()
    after, data_after = cluster.samples(), cluster.data_bytes()
    busy = machine_busy_s() - busy_before
    phases = phase_figures(phases_before, await phase_totals(http, urls))
    validations = validation_figures(validations_before, await validation_totals(http, urls))
    client_cpu = _cpu_since(client_before)
    tip = max(w.height for w in watches)
    console.print(f"  fetching blocks {base + 1}..{tip} to match transactions…")
    blocks = await fetch_blocks(http, urls, base + 1, tip)
    where = {h: height for height, (hashes, _, _) in blocks.items() for h in hashes}
    o = outcome(work.items, log, where, watches)
    use = node_use(names, before, after, data_before, data_after)
    doc = figures(o, log, blocks, use, ceil.to_obj())
    add_anon_figures(doc, anon.figures())
    sample = _receipt_sample(work, log, where)
    if opts.check_receipts and sample:
        doc["receipts_checked"] = await receipt_codes(http, urls[0], sample[: opts.check_receipts])
    doc["blocks_missing"] = tip - base - len(blocks)
    doc["max_block_gap_s"] = round(_max_gap(watches[0], base, tip), 2)
    doc["longest_block_gaps"] = _longest_gaps(watches[0], base, tip)
    doc |= _cpu_figures(use, o.committed, ceil.cores, busy, client_cpu)
    doc["wall_s"] = round(log.ended - log.began, 1)
    doc["height_phase_ms"] = phases  # mean per phase over the nodes' measured heights
    doc["validations"] = validations  # proposals validated ahead / executed, all nodes
    doc["lost_examples"] = [work.items[i].hash.hex() for i in o.lost[:5]]
    if profiler is not None:
        doc["profile"] = {name: summary(profiler.file(name)) for name in profiler.pids}
    return doc


def _start_profiler(opts: RunOptions, cluster: Cluster) -> Profiler | None:
    """py-spy on every node when ``--profile`` is given."""
    if not opts.profile_dir:
        return None
    profiler = Profiler(opts.profile_dir, {n.name: n.pid for n in cluster.nodes if n.pid})
    profiler.start()
    return profiler


async def _drive(
    opts: RunOptions,
    work: Workload,
    http: aiohttp.ClientSession,
    urls: list[str],
    watches: list[BlockWatch],
    base: int,
    console: Console,
) -> DriveLog:
    """The timed phase: the driver at the offered rate (or ramp), then the drain."""
    what = "ramp" if opts.ramp else f"{opts.rate:,.0f} tx/s"
    console.print(f"[bold]timed phase[/]: {len(work.items):,} transactions at {what}…")
    driver = Driver(http, urls, work.items, tick_s=opts.tick_s)
    log = await driver.run(opts.steps(), lambda: max(w.txs_since(base) for w in watches))
    await drain(watches, base, log.accepted(), opts.drain_s)
    return log


def _cpu_since(before: os.times_result) -> float:
    """CPU seconds (user and system) this process spent since ``before``."""
    after = os.times()
    return (after.user - before.user) + (after.system - before.system)


def _receipt_sample(work: Workload, log: DriveLog, where: dict[bytes, int]) -> list[bytes]:
    """The committed valid transactions, in a fixed shuffled order."""
    sample = [
        work.items[i].hash
        for i in range(log.sent)
        if work.items[i].valid and work.items[i].hash in where
    ]
    random.Random(1).shuffle(sample)
    return sample


def _cpu_figures(
    use: Sequence[NodeUse], committed: int, cores: int, busy: float, client_cpu: float
) -> dict[str, Any]:
    """The nodes' CPU per committed transaction, the client's, and everything else's."""
    node_cpu = sum(u.cpu_s for u in use if not math.isnan(u.cpu_s))
    doc: dict[str, Any] = {}
    if committed:
        # CPU the nodes spent per committed transaction, and what the cores allow at that cost:
        # a figure that holds even when other work shares the machine during the run.
        doc["node_cpu_ms_per_tx"] = round(1000 * node_cpu / committed, 3)
        doc["cpu_bound_tps"] = round(_cpu_bound(use, committed, cores), 1)
    doc["client_cpu_s"] = round(client_cpu, 1)
    doc["other_cpu_s"] = round(max(0.0, busy - node_cpu - client_cpu), 1)
    doc["machine_busy_s"] = round(busy, 1)
    return doc


def _cpu_bound(use: Sequence[NodeUse], committed: int, cores: int) -> float:
    """Highest tx/s the cores allow at the measured CPU cost per transaction.

    All nodes together get at most ``cores`` CPU seconds per second, and each node
    (one asyncio thread) at most one.
    """
    costs = [u.cpu_s / committed for u in use if not math.isnan(u.cpu_s)]
    if not costs or max(costs) <= 0:
        return math.nan
    return min(cores / sum(costs), 1 / max(costs))


def _max_gap(watch: BlockWatch, base: int, tip: int) -> float:
    """Longest wait between consecutive block announcements of the timed phase."""
    times = sorted(t for h, t in watch.announced.items() if base <= h <= tip)
    return max((b - a for a, b in itertools.pairwise(times)), default=math.nan)


def _longest_gaps(watch: BlockWatch, base: int, tip: int, count: int = 8) -> list[dict[str, Any]]:
    """The ``count`` longest waits between block announcements of the timed phase: the
    height that ended each wait, the wait, when (seconds into the phase) and its block's
    size, to tell a stall that recurs from one at the start."""
    heights = sorted(h for h in watch.announced if base <= h <= tip)
    if len(heights) < 2:
        return []
    start = watch.announced[heights[0]]
    gaps = [(watch.announced[b] - watch.announced[a], b) for a, b in itertools.pairwise(heights)]
    return [
        {
            "height": h,
            "gap_s": round(gap, 3),
            "at_s": round(watch.announced[h] - start, 1),
            "txs": watch.tx_count.get(h, 0),
        }
        for gap, h in sorted(gaps, reverse=True)[:count]
    ]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when the platform has it (as the node does), else asyncio.

    Ctrl-C and SIGTERM cancel ``coro``: its ``finally`` blocks run, then KeyboardInterrupt
    is raised here and the caller's stop the nodes. (A signal handler that raises would
    raise inside whatever callback the loop runs at that moment; uvloop takes an exception
    from a transport's callback for that connection's fatal error and goes on, so the
    bench ran on with its nodes after a SIGTERM.)
    """
    signals: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(_cancelled_by_signals(coro, signals))
        return uvloop.run(_cancelled_by_signals(coro, signals))
    except asyncio.CancelledError:
        if signals:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in saved.items():  # the loop leaves them at their defaults
            signal.signal(sig, handler)


async def _cancelled_by_signals(coro: Coroutine[Any, Any, T], signals: list[int]) -> T:
    """Await ``coro``, cancelled by the first of :data:`STOP_SIGNALS` (noted in ``signals``)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def stop(sig: int) -> None:
        signals.append(sig)
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await coro
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
