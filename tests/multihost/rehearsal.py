"""The multi-host rehearsal: validators in separate network namespaces, latency between them.

Each validator runs in its own namespace with its own address (:mod:`tests.e2e.netns`,
shaped links from :mod:`tests.e2e.shaper`) and knows the others only by the
addresses in its config. One rehearsal, for one :class:`Plan`:

0. **addresses** — :func:`tests.multihost.reach.check_addresses`: each validator
   listens and answers only at the address in its config;
1. **steady** — a fixed offered load (:class:`tests.e2e.load.Load`, bounded in count
   and time) for ``steady_s``: blocks/s and finality p50/p99;
2. **partition** — the last f validators are cut off (blackhole routes) for
   ``partition_s``: the majority keeps committing, the minority commits nothing; healed,
   the minority catches up;
3. **kill** — one majority validator is killed (SIGKILL by its own pid) for ``kill_s``:
   the others keep committing; restarted, it catches up;
4. **safety** — the load drains and :func:`tests.e2e.invariants.check_all` checks that
   every node's block hash agrees at every height, that every acknowledged
   transaction is in the chain once with verifying receipts on every node, and that
   nobody double-signed (the witness observer); with ``audit`` the stores are audited.

Finality is a transaction's time from its first submission to the first
announcement (``/v1/events``, :class:`benchmarks.driver.BlockWatch`) of the block
holding it by any node; the suite's address sits next to every node (its packets
are not delayed), so the figure is the network's, not the client's. Blocks/s and
finality are given for each phase.

``python -m tests.multihost.rehearsal --help``; ``make multihost`` runs the long set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from benchmarks.driver import BlockWatch
from benchmarks.results import percentile
from devnet.layout import CITIES
from tests.e2e import netns
from tests.e2e.cluster import Cluster
from tests.e2e.invariants import assert_recovers, check_all
from tests.e2e.load import Load
from tests.e2e.netns import NetnsMesh
from tests.e2e.scenario import outage
from tests.multihost.reach import check_addresses

# One-way delay from each devnet city (node i is named after CITIES[i % 7]) to a common
# backbone: a link between two validators costs the sum of both ends, from 10 ms
# (Busan-Ulsan) to 60 ms (Incheon-Gwangju).
CITY_MS = {
    "busan": 5.0,
    "ulsan": 5.0,
    "sejong": 10.0,
    "daejeon": 10.0,
    "suwon": 20.0,
    "incheon": 30.0,
    "gwangju": 30.0,
}
CATCH_UP_BOUND_S = 90.0
PROGRESS_BOUND_S = 30.0


@dataclass(frozen=True)
class Plan:
    """What one rehearsal runs. ``delay_ms`` is the one-way delay of every link between
    two validators (``profile="uniform"``) or ignored (``"cities"``: :data:`CITY_MS`)."""

    validators: int = 4
    profile: str = "uniform"
    delay_ms: float = 20.0
    jitter_ms: float = 2.0
    loss_pct: float = 1.0
    rate_per_s: float = 20.0
    steady_s: float = 30.0
    partition_s: float = 15.0  # 0: no partition phase
    kill_s: float = 10.0  # 0: no kill phase
    audit: bool = False
    seed: int = 1

    @property
    def label(self) -> str:
        where = f"{self.delay_ms:g} ms" if self.profile == "uniform" else "cities"
        return f"{self.validators} validators, {where}, {self.loss_pct:g} % loss"

    def delays(self) -> list[list[float]]:
        """One-way delay per ordered pair of validators (row: sender)."""
        n = self.validators
        if self.profile == "uniform":
            return [[self.delay_ms] * n for _ in range(n)]
        spur = [CITY_MS[CITIES[i % len(CITIES)]] for i in range(n)]
        return [[spur[i] + spur[j] for j in range(n)] for i in range(n)]

    def shape(self, mesh: NetnsMesh) -> None:
        n = self.validators
        mesh.shape_pairs(
            self.delays(),
            [[self.jitter_ms] * n for _ in range(n)],
            [[self.loss_pct] * n for _ in range(n)],
        )


class TimedLoad(Load):
    """:class:`Load` that keeps each transaction's first submission time and polls
    receipts (and re-submits) from a second thread, so that slow answers under delay
    do not slow the sending: the offered rate stays the one asked for."""

    def __init__(self, cluster: Cluster, **kwargs: Any) -> None:
        super().__init__(cluster, **kwargs)
        self.sent_at: dict[bytes, float] = {}
        self._poller = threading.Thread(target=self._poll_until_closed, daemon=True)

    def start(self) -> TimedLoad:
        super().start()
        self._poller.start()
        return self

    def _poll(self) -> None:
        """Nothing in the sending thread: :meth:`_poll_until_closed` does it."""

    def _resubmit(self) -> None:
        """Nothing in the sending thread: :meth:`_poll_until_closed` does it."""

    def _poll_until_closed(self) -> None:
        while not self._stop.wait(0.3):
            with self._lock:
                for tx_hash, pending in self.outstanding.items():
                    self.sent_at.setdefault(tx_hash, pending.first_sent)
            Load._poll(self)
            Load._resubmit(self)

    def close(self) -> None:
        super().close()
        if self._poller.is_alive():
            self._poller.join(timeout=30)


class BlockClock:
    """Watches every node's block announcements; a height's time is its first one."""

    def __init__(self, urls: list[str], tls: ssl.SSLContext | None = None) -> None:
        """``tls``: what verifies the nodes' HTTPS certificates (None: plaintext)."""
        self.watches = [BlockWatch(url) for url in urls]
        self._tls = tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._watch(started),), daemon=True, name="block-clock"
        )
        self._thread.start()
        started.wait(10)

    async def _watch(self, started: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        connector = aiohttp.TCPConnector(ssl=self._tls if self._tls is not None else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(w.run(session, self._stop) for w in self.watches))

    def first_seen(self) -> dict[int, float]:
        """Height -> monotonic time some node first announced it."""
        seen: dict[int, float] = {}
        for watch in self.watches:
            for height, at in list(watch.announced.items()):
                seen[height] = min(at, seen.get(height, at))
        return seen

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


@dataclass
class Phases:
    """The (name, start, end) of each phase, in monotonic time."""

    spans: list[tuple[str, float, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.spans.append((name, began, time.monotonic()))


def phase_figures(
    span: tuple[str, float, float], seen: dict[int, float], load: TimedLoad
) -> dict[str, Any]:
    """Blocks/s over the phase; finality of the transactions first sent in it."""
    name, began, ended = span
    seconds = max(1e-3, ended - began)
    blocks = sum(1 for at in seen.values() if began <= at < ended)
    acked = load.acknowledged()
    sent = [h for h, at in load.sent_at.items() if began <= at < ended]
    finality = sorted(
        (seen[acked[h]] - load.sent_at[h]) * 1000 for h in sent if h in acked and acked[h] in seen
    )
    return {
        "phase": name,
        "seconds": round(seconds, 1),
        "blocks": blocks,
        "blocks_per_s": round(blocks / seconds, 2),
        "sent": len(sent),
        "offered_tps": round(len(sent) / seconds, 1),
        "committed": sum(1 for h in sent if h in acked),
        "finality_p50_ms": round(percentile(finality, 50), 1),
        "finality_p99_ms": round(percentile(finality, 99), 1),
    }


def partition_phase(cluster: Cluster, hold_s: float) -> dict[str, Any]:
    """Cut the last f validators off; the majority commits, the minority does not;
    heal; the minority catches up."""
    assert cluster.netns is not None
    f = (cluster.count - 1) // 3
    minority, majority = cluster.names[-f:], cluster.names[:-f]
    cluster.netns.partition(
        [{cluster.index(n) for n in minority}, {cluster.index(n) for n in majority}]
    )
    began = time.monotonic()
    progress_s = assert_recovers(cluster, majority, PROGRESS_BOUND_S)
    time.sleep(min(1.5, hold_s))  # what was certified before the cut may still land
    frozen = cluster.heights(minority)
    time.sleep(max(0.0, hold_s - (time.monotonic() - began)))
    still = cluster.heights(minority)
    assert still == frozen, f"the cut-off minority committed without a quorum: {frozen} -> {still}"
    cluster.netns.heal()
    target = cluster.max_height(majority)
    caught_up_s = cluster.wait_progress(minority, target - 1, CATCH_UP_BOUND_S)
    assert caught_up_s is not None, f"{minority} did not catch up to {target} after the heal"
    return {
        "cut_off": minority,
        "majority_progress_s": round(progress_s, 2),
        "minority_caught_up_s": round(caught_up_s, 2),
    }


def kill_phase(cluster: Cluster, down_s: float) -> dict[str, Any]:
    """SIGKILL one majority validator, restart it after ``down_s``; it catches up."""
    victim = cluster.names[0]
    pid = cluster.entry(victim).pid
    kill, restart = cluster.kill, cluster.start_node
    progress_s, caught_up_s = outage(
        cluster, victim, down=kill, up=restart, down_s=down_s, catch_up_bound_s=CATCH_UP_BOUND_S
    )
    return {
        "killed": victim,
        "killed_pid": pid,
        "others_progress_s": round(progress_s, 2),
        "caught_up_s": round(caught_up_s, 2),
    }


def run(plan: Plan, home: str) -> dict[str, Any]:
    """One rehearsal under ``home``; raises AssertionError when a check fails."""
    cluster = Cluster(home, plan.validators, transport="netns", seed=plan.seed, shaping=plan.shape)
    clock: BlockClock | None = None
    try:
        cluster.start()
        reach = check_addresses(cluster)
        clock = BlockClock([e.url for e in cluster.nodes], cluster.api_ssl)
        total_s = plan.steady_s + plan.partition_s + plan.kill_s + 60
        load = TimedLoad(
            cluster,
            rate_per_s=plan.rate_per_s,
            max_txs=int(plan.rate_per_s * total_s),
            max_seconds=total_s,
            seed=plan.seed,
            tag="multihost",
        ).start()
        return {**_phases(plan, cluster, clock, load), "reach": reach}
    finally:
        if clock is not None:
            clock.close()
        cluster.close()


def _phases(plan: Plan, cluster: Cluster, clock: BlockClock, load: TimedLoad) -> dict[str, Any]:
    phases, faults = Phases(), {}
    with phases.phase("steady"):
        time.sleep(plan.steady_s)
    if plan.partition_s > 0:
        with phases.phase("partition"):
            faults["partition"] = partition_phase(cluster, plan.partition_s)
    if plan.kill_s > 0:
        with phases.phase("kill"):
            faults["kill"] = kill_phase(cluster, plan.kill_s)
    unconfirmed = load.drain(60.0)
    time.sleep(1.0)  # the last announcements reach the clock
    seen = clock.first_seen()
    assert cluster.netns is not None
    links = cluster.netns.link_stats()
    summary = check_all(cluster, load.acknowledged(), audit=plan.audit, settle_s=60.0)
    assert unconfirmed == 0, f"{unconfirmed} transactions never committed"
    return {
        "plan": asdict(plan),
        "label": plan.label,
        "phases": [phase_figures(span, seen, load) for span in phases.spans],
        "faults": faults,
        "submitted": load.stats.submitted,
        "committed": len(load.acknowledged()),
        "resubmits": load.stats.resubmits,
        "links": links,
        "safety": {
            "height": summary.height,
            "nodes_agree": summary.nodes_checked,
            "receipts_verified": summary.receipts_verified,
            "evidence_against": sorted(summary.evidence_offenders),
            "audited": summary.audited,
        },
    }


def describe(result: dict[str, Any]) -> str:
    """A few lines for a person: the figures of each phase and what was checked."""
    lines = [f"== {result['label']}"]
    for p in result["phases"]:
        lines.append(
            f"  {p['phase']:<9} {p['seconds']:>6.1f} s  {p['blocks_per_s']:>5.2f} blocks/s  "
            f"finality p50 {p['finality_p50_ms']:>7.1f} ms  p99 {p['finality_p99_ms']:>7.1f} ms  "
            f"({p['committed']}/{p['sent']} committed, {p['offered_tps']} tx/s offered)"
        )
    for name, figures in result["faults"].items():
        lines.append(f"  {name}: {figures}")
    safety = result["safety"]
    lines.append(
        f"  safety: {safety['nodes_agree']} nodes agree up to height {safety['height']}, "
        f"{safety['receipts_verified']} receipts verified, {result['committed']} txs committed, "
        f"evidence against {safety['evidence_against'] or 'nobody'}; links {result['links']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", default="4", help="comma-separated, e.g. 4,7")
    parser.add_argument("--delays", default="20", help="one-way ms, comma-separated, e.g. 20,60")
    parser.add_argument("--profile", choices=["uniform", "cities"], default="uniform")
    parser.add_argument("--jitter", type=float, default=2.0, help="± ms on every link")
    parser.add_argument("--loss", type=float, default=1.0, help="percent of packets dropped")
    parser.add_argument("--rate", type=float, default=20.0, help="offered load, tx/s")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds")
    parser.add_argument("--partition", type=float, default=15.0, help="seconds (0: none)")
    parser.add_argument("--kill", type=float, default=10.0, help="seconds (0: none)")
    parser.add_argument("--audit", action="store_true", help="audit every store at the end")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    reason = netns.shaping_available()
    if reason is not None:
        print(f"multihost rehearsal not run: {reason}", file=sys.stderr)
        return 2
    results, failed = [], 0
    for validators in (int(v) for v in args.validators.split(",")):
        for delay in (float(d) for d in args.delays.split(",")):
            plan = Plan(
                validators, args.profile, delay, args.jitter, args.loss, args.rate,
                args.steady, args.partition, args.kill, args.audit, args.seed,
            )  # fmt: skip
            result, ok = _run_one(plan)
            results.append(result)
            failed += not ok
            if args.profile == "cities":
                break  # the delays come from the city table
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"at": int(time.time()), "results": results}, f, indent=2)
    return 1 if failed else 0


def _run_one(plan: Plan) -> tuple[dict[str, Any], bool]:
    home = tempfile.mkdtemp(prefix="cityledger-multihost-")
    try:
        result = run(plan, home)
    except AssertionError as exc:
        print(f"== {plan.label}: FAILED: {exc}\n   (node logs kept under {home})")
        return {"plan": asdict(plan), "label": plan.label, "failed": str(exc)[:2000]}, False
    print(describe(result), flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return result, True


if __name__ == "__main__":
    sys.exit(main())
