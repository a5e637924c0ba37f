"""Soak: random faults under a steady load for N minutes, then every invariant.

    python -m tests.e2e.soak --minutes 30 [--seed S] [--transport relay|direct|netns]

Four validators (through the fault relay by default, so partitions and bad links
need no root), a bounded load, and one fault at a time drawn from the catalogue
below: injected, held for a few seconds, removed; then the time until every honest
node that is up commits a new block is the fault's *recovery*. At the end the load
drains and the invariants run (no fork, nothing lost with proofs on every node, no
honest double-sign, audit of every store). Prints a summary table; exits 1 on any
loss, fork, double-sign, failed audit or a recovery over the bound, 2 on a crash
of the soak itself. Every process it starts it stops by pid, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.e2e.cluster import Cluster
from tests.e2e.invariants import LIVENESS_BOUND_S, InvariantViolation, check_all
from tests.e2e.launcher import Faults
from tests.e2e.load import Load
from tests.e2e.relay import LinkPolicy
from tests.e2e.scenario import current_proposer

HARD_RECOVERY_S = 90.0  # past this a fault is a liveness failure and the soak moves on
CRASH_POINTS = ("commit.before_write", "commit.after_write", "sign.before_send")


@dataclass
class FaultRecord:
    kind: str
    detail: str
    held_s: float
    recovery_s: float | None  # None: no recovery within HARD_RECOVERY_S


@dataclass
class Soak:
    cluster: Cluster
    rng: random.Random
    allow_full_restart: bool = False
    records: list[FaultRecord] = field(default_factory=list)
    crash_points: list[tuple[str, bool]] = field(default_factory=list)  # (point, reached)

    # --- the catalogue ------------------------------------------------------------------

    def faults(self) -> dict[str, tuple[float, Callable[[], tuple[str, Callable[[], None]]]]]:
        """kind -> (weight, inject); inject returns (detail, remove)."""
        catalogue: dict[str, tuple[float, Callable[[], tuple[str, Callable[[], None]]]]] = {
            "kill-random": (3, self.kill_random),
            "kill-proposer": (2, self.kill_proposer),
            "pause-one": (2, self.pause_one),
            "pause-two": (1, self.pause_two),
            "crash-point": (2, self.crash_point),
        }
        if self.cluster.relay is not None:
            catalogue["partition-1|3"] = (2, lambda: self.partition(1))
            catalogue["partition-2|2"] = (1, lambda: self.partition(2))
            catalogue["bad-links"] = (2, self.bad_links)
        if self.allow_full_restart:
            catalogue["kill-all"] = (1, self.kill_all)
        return catalogue

    def kill_random(self) -> tuple[str, Callable[[], None]]:
        victim = self.rng.choice(self.cluster.names)
        self.cluster.kill(victim)
        return victim, lambda: self.restart(victim)

    def kill_proposer(self) -> tuple[str, Callable[[], None]]:
        victim = current_proposer(self.cluster)
        self.cluster.kill(victim)
        return victim, lambda: self.restart(victim)

    def pause_one(self) -> tuple[str, Callable[[], None]]:
        victim = self.rng.choice(self.cluster.names)
        self.cluster.pause(victim)
        return victim, lambda: self.cluster.resume(victim)

    def pause_two(self) -> tuple[str, Callable[[], None]]:
        victims = self.rng.sample(self.cluster.names, 2)
        for v in victims:
            self.cluster.pause(v)

        def remove() -> None:
            for v in victims:
                self.cluster.resume(v)

        return ",".join(victims), remove

    def crash_point(self) -> tuple[str, Callable[[], None]]:
        victim = self.rng.choice(self.cluster.names)
        point = self.rng.choice(CRASH_POINTS)
        nth = self.rng.randint(1, 4)
        self.cluster.restart(victim, Faults(crash_at=f"{point}:{nth}"))

        def remove() -> None:
            # reached: the process ended at the point (exit status 70), not held too short
            self.crash_points.append((point, self.cluster.crashed_at_point(victim)))
            self.restart(victim)

        return f"{victim} at {point}:{nth}", remove

    def partition(self, size: int) -> tuple[str, Callable[[], None]]:
        assert self.cluster.relay is not None
        names = self.cluster.names[:]
        self.rng.shuffle(names)
        mode = self.rng.choice(["reset", "blackhole"])
        self.cluster.relay.partition([set(names[:size]), set(names[size:])], mode)
        return f"{sorted(names[:size])} {mode}", self.cluster.relay.heal

    def bad_links(self) -> tuple[str, Callable[[], None]]:
        assert self.cluster.relay is not None
        policy = LinkPolicy(
            drop=self.rng.choice([0.0, 0.05, 0.1]),
            duplicate=self.rng.choice([0.0, 0.1, 0.2]),
            reorder=self.rng.choice([0.0, 0.1, 0.2]),
            delay_ms=self.rng.choice([0, 20, 100]),
            jitter_ms=self.rng.choice([0, 30, 100]),
        )
        self.cluster.relay.set_policy(policy)
        detail = f"drop {policy.drop} dup {policy.duplicate} reorder {policy.reorder}"
        return detail + f" delay {policy.delay_ms}+{policy.jitter_ms} ms", self.cluster.relay.heal

    def kill_all(self) -> tuple[str, Callable[[], None]]:
        for name in self.cluster.up():
            self.cluster.pause(name)
        for name in self.cluster.names:
            self.cluster.kill(name)

        def remove() -> None:
            for name in self.cluster.names:
                self.cluster.start_node(name)

        return "all", remove

    def restart(self, name: str) -> None:
        if self.cluster.running(name):
            self.cluster.stop_node(name)
        self.cluster.start_node(name)

    # --- one fault ----------------------------------------------------------------------

    def one(self, kind: str, inject: Callable[[], tuple[str, Callable[[], None]]]) -> None:
        held = self.rng.uniform(2, 8)
        detail, remove = inject()
        time.sleep(held)
        remove()
        started = time.monotonic()
        honest = [n for n in self.cluster.honest()]
        above = self.cluster.max_height(honest)
        ok = self.cluster.wait(
            lambda: all(self.cluster.height(n) > above for n in honest), HARD_RECOVERY_S
        )
        recovery = time.monotonic() - started if ok else None
        self.records.append(FaultRecord(kind, detail, held, recovery))
        shown = "NO RECOVERY" if recovery is None else f"{recovery:5.1f} s"
        print(f"  {kind:<14} {detail:<48} held {held:4.1f} s  recovery {shown}", flush=True)

    def run(self, seconds: float) -> None:
        catalogue = self.faults()
        kinds = list(catalogue)
        weights = [catalogue[k][0] for k in kinds]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline - 10:
            kind = self.rng.choices(kinds, weights)[0]
            self.one(kind, catalogue[kind][1])
            time.sleep(self.rng.uniform(1, 3))


def summary_table(soak: Soak, load: Load, lost: int, forks: int, problems: list[str]) -> str:
    by_kind: dict[str, list[FaultRecord]] = defaultdict(list)
    for r in soak.records:
        by_kind[r.kind].append(r)
    lines = [
        f"{'fault':<16}{'injected':>9}{'recovered':>10}{'mean s':>8}{'max s':>8}",
        "-" * 51,
    ]
    for kind in sorted(by_kind):
        records = by_kind[kind]
        times = [r.recovery_s for r in records if r.recovery_s is not None]
        mean = sum(times) / len(times) if times else float("nan")
        worst = max(times) if times else float("nan")
        lines.append(f"{kind:<16}{len(records):>9}{len(times):>10}{mean:>8.1f}{worst:>8.1f}")
    all_times = [r.recovery_s for r in soak.records if r.recovery_s is not None]
    unrecovered = sum(1 for r in soak.records if r.recovery_s is None)
    over = sum(1 for t in all_times if t > LIVENESS_BOUND_S)
    rows = [
        ("faults injected", f"{len(soak.records)}"),
        (
            "crash points reached",
            f"{sum(reached for _, reached in soak.crash_points)} of {len(soak.crash_points)}",
        ),
        ("transactions submitted", f"{load.stats.submitted}"),
        ("transactions acknowledged", f"{len(load.acknowledged())}"),
        ("lost", f"{lost}"),
        ("forks", f"{forks}"),
        (
            "longest recovery",
            f"{max(all_times, default=0.0):.1f} s (bound {LIVENESS_BOUND_S:.0f} s; "
            f"over it: {over}; never: {unrecovered})",
        ),
        ("invariant problems", f"{len(problems)}"),
    ]
    lines.append("-" * 51)
    lines += [f"{label:<27}{value}" for label, value in rows]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transport", choices=["relay", "direct", "netns"], default="relay")
    parser.add_argument("--rate", type=float, default=8.0, help="transactions per second")
    parser.add_argument("--home", help="keep the network here (default: a temporary dir)")
    parser.add_argument("--full-restarts", action="store_true", help="also kill all 4 at once")
    args = parser.parse_args(argv)
    seed = args.seed or random.randrange(1, 2**31)
    home = args.home or tempfile.mkdtemp(prefix="cityledger-soak-")
    print(f"soak: {args.minutes} min, seed {seed}, transport {args.transport}, home {home}")
    # the relay's frame faults act on frames it can read: plaintext links (loopback only)
    settings = {"p2p.tls": False} if args.transport == "relay" else None
    cluster = Cluster(
        os.path.join(home, "net"), 4, transport=args.transport, seed=seed, settings=settings
    )
    load: Load | None = None
    problems: list[str] = []
    lost = forks = 0
    try:
        cluster.start()
        seconds = args.minutes * 60
        load = Load(
            cluster,
            rate_per_s=args.rate,
            max_txs=int(seconds * args.rate) + 100,
            max_seconds=seconds,
            seed=seed,
            tag=f"soak{seed}",
        ).start()
        soak = Soak(cluster, random.Random(seed), args.full_restarts)
        soak.run(seconds)
        if cluster.relay is not None:
            cluster.relay.heal()
        unconfirmed = load.drain(120)
        if unconfirmed:
            problems.append(f"{unconfirmed} submitted transactions never committed")
        try:
            summary = check_all(cluster, load.acknowledged(), settle_s=60)
            print(f"invariants: {summary.line()}; checks {summary.timings}")
        except InvariantViolation as exc:
            text = str(exc)
            problems.append(text.splitlines()[0][:400])
            counted = re.match(r"LOST: (\d+)", text)
            lost += int(counted.group(1)) if counted else int(text.startswith("LOST"))
            forks += int(text.startswith("FORK"))
        for r in soak.records:
            if r.recovery_s is None or r.recovery_s > LIVENESS_BOUND_S:
                problems.append(f"liveness: {r.kind} ({r.detail}) recovery {r.recovery_s}")
        print()
        print(summary_table(soak, load, lost, forks, problems))
    except Exception:
        traceback.print_exc()
        print(cluster.logs(30) if cluster.network is not None else "")
        return 2
    finally:
        if load is not None:
            load.close()
        cluster.close()
        if args.home is None and not problems:
            shutil.rmtree(home, ignore_errors=True)
    if problems:
        print(f"\nSOAK FAILED (seed {seed}; data kept in {home})")
        return 1
    print(f"\nsoak passed (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
