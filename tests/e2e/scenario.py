"""Small helpers every fault scenario uses: load, finish with the invariants, figures."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.cluster import Cluster
from tests.e2e.invariants import Summary, assert_recovers, check_all
from tests.e2e.load import Load

RESULTS_ENV = "CITYLEDGER_E2E_RESULTS"  # append one JSON line of figures per scenario


def start_load(cluster: Cluster, seed: int, **kwargs: Any) -> Load:
    options: dict[str, Any] = {"rate_per_s": 12.0, "max_txs": 600, "max_seconds": 60.0}
    options.update(kwargs)
    return Load(cluster, seed=seed, **options).start()


def finish(
    cluster: Cluster,
    load: Load,
    scenario: str,
    *,
    drain_s: float = 45.0,
    audit: bool = True,
    names: list[str] | None = None,
    **figures: Any,
) -> Summary:
    """Drain the load, check every invariant, print and record the figures."""
    unconfirmed = load.drain(drain_s)
    acked = load.acknowledged()
    summary = check_all(cluster, acked, audit=audit, names=names)
    record(
        scenario,
        acknowledged=len(acked),
        lost=0,
        unconfirmed=unconfirmed,
        submitted=load.stats.submitted,
        resubmits=load.stats.resubmits,
        max_latency_s=round(load.stats.latency_max_s, 2),
        height=summary.height,
        evidence_against=sorted(summary.evidence_offenders),
        checks_s={k: round(v, 2) for k, v in summary.timings.items()},
        **figures,
    )
    print(f"{scenario}: {summary.line()}; figures {figures}")
    # Every node is back and the load re-sends what a crash dropped from a mempool, so
    # anything still unconfirmed after the drain means the network stopped taking work.
    assert unconfirmed == 0, f"{unconfirmed} transactions never committed after the faults"
    return summary


def record(scenario: str, **figures: Any) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"scenario": scenario, "at": int(time.time()), **figures}) + "\n")


def current_proposer(cluster: Cluster) -> str:
    """The proposer of the round the network is in now (asked of a node that is up)."""
    for name in cluster.up():
        status = cluster.status(name)
        if status is not None:
            consensus = status["consensus"]
            return cluster.proposer(int(consensus["height"]), int(consensus["round"]))
    raise AssertionError("no node answers")


def outage(
    cluster: Cluster,
    victim: str,
    *,
    down: Callable[[str], None],
    up: Callable[[str], object],
    down_s: float,
    catch_up_bound_s: float,
) -> tuple[float, float]:
    """Take ``victim`` down with ``down`` (kill, pause); the others must keep committing;
    after ``down_s`` bring it back with ``up``; it must catch up. Returns (seconds until
    the others progressed, seconds until the victim caught up)."""
    down(victim)
    others = [n for n in cluster.names if n != victim]
    progress = assert_recovers(cluster, others)
    time.sleep(max(0.0, down_s - progress))
    up(victim)
    caught_up = cluster.wait_caught_up(victim, catch_up_bound_s)
    assert caught_up is not None, f"{victim} did not catch up within {catch_up_bound_s} s"
    return progress, caught_up
