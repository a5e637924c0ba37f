"""Crashes: SIGKILL of one validator (random, or the current proposer), restart and
catch-up; named crash points in the commit path and around signing; SIGKILL of
the whole network at once, then a restart from disk."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.conftest import ClusterFactory
from tests.e2e.invariants import (
    LIVENESS_BOUND_S,
    assert_recovers,
    audit_cli_available,
    audit_home,
)
from tests.e2e.launcher import CRASH_EXIT_CODE, CRASH_POINTS, Faults
from tests.e2e.scenario import current_proposer, finish, outage, start_load

CATCH_UP_BOUND_S = 30.0


def _kill_and_restart(cluster: Cluster, victim: str, down_s: float) -> tuple[float, float]:
    """SIGKILL ``victim`` for ``down_s``, then restart it (see :func:`outage`)."""
    return outage(
        cluster,
        victim,
        down=cluster.kill,
        up=cluster.start_node,
        down_s=down_s,
        catch_up_bound_s=CATCH_UP_BOUND_S,
    )


@pytest.mark.full  # make test: tests/integration/test_network.py kills and catches up
def test_sigkill_of_the_proposer_then_restart_and_catch_up(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=12)
    time.sleep(3)
    victim = current_proposer(cluster)
    progress, caught_up = _kill_and_restart(cluster, victim, down_s=4)
    finish(
        cluster,
        load,
        "sigkill-proposer",
        victim=victim,
        progress_without_it_s=round(progress, 2),
        catch_up_s=round(caught_up, 2),
    )


@pytest.mark.full
def test_sigkill_of_random_validators_in_turn(make_cluster: ClusterFactory, seed: int) -> None:
    rng = random.Random(seed)
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=45)
    figures = []
    for _ in range(4):
        time.sleep(rng.uniform(1, 4))
        victim = rng.choice(cluster.names)
        progress, caught_up = _kill_and_restart(cluster, victim, down_s=rng.uniform(2, 8))
        figures.append((victim, round(progress, 2), round(caught_up, 2)))
    finish(cluster, load, "sigkill-random-x4", kills=figures)


def _liveness_after_full_restart(cluster: Cluster, bound_s: float, above: int) -> float:
    """Progress after every validator restarted. A stall fails, whatever its cause (e.g. a
    network locked on a block nobody kept: F1b, the signer keeps the locked block with
    the lock)."""
    return assert_recovers(cluster, cluster.names, bound_s, above=above)


def _power_cut(cluster: Cluster) -> None:
    """Freeze every node first, then SIGKILL them: all die at (nearly) the same instant."""
    for name in cluster.up():
        cluster.pause(name)
    for name in cluster.names:
        cluster.kill(name)


@pytest.mark.full
def test_kill_9_of_the_whole_network_resumes_from_disk(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=30, rate_per_s=20)
    time.sleep(6)
    acked_before = load.acknowledged()
    heights_before = cluster.heights()
    _power_cut(cluster)
    time.sleep(2)
    started = time.monotonic()
    for name in cluster.names:
        cluster.start_node(name)
    resumed = cluster.wait(
        lambda: all(cluster.height(n) >= heights_before[n] for n in cluster.names), 30
    )
    assert resumed, f"nodes lost committed heights: before {heights_before}, {cluster.heights()}"
    progress = _liveness_after_full_restart(
        cluster, LIVENESS_BOUND_S + 15, max(heights_before.values())
    )
    restart_s = time.monotonic() - started
    assert set(acked_before) <= set(load.acknowledged())
    summary = finish(
        cluster,
        load,
        "kill-9-all",
        acked_before_kill=len(acked_before),
        restart_to_progress_s=round(restart_s, 2),
        progress_s=round(progress, 2),
    )
    if audit_cli_available():  # the operator's command too, on the stopped stores
        for name in cluster.names:
            ok, text = audit_home(cluster.entry(name).home, use_cli=True)
            assert ok, f"cityledger audit verify --home failed on {name}: {text}"
    assert summary.height >= max(heights_before.values())


@pytest.mark.full
def test_rolling_restart_of_the_whole_network(make_cluster: ClusterFactory, seed: int) -> None:
    """Every validator stopped cleanly (SIGTERM, one after the other, as an operator
    upgrading them would) and started again, three times over, under load."""
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=60)
    progress = []
    for _ in range(3):
        time.sleep(4)
        before = cluster.max_height()
        cluster.stop_all()
        for name in cluster.names:
            cluster.start_node(name)
        took = _liveness_after_full_restart(cluster, LIVENESS_BOUND_S + 15, before)
        progress.append(round(took, 2))
    finish(cluster, load, "rolling-restart-all-x3", progress_s=progress)


@pytest.mark.full
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_crash_point_restart_is_consistent_and_never_double_signs(
    make_cluster: ClusterFactory, seed: int, point: str
) -> None:
    rng = random.Random(seed)
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=40)
    victim = rng.choice(cluster.names)
    crashes = 0
    for cycle in range(3):
        nth = rng.randint(2, 6)
        cluster.restart(victim, Faults(crash_at=f"{point}:{nth}"))
        crashed = cluster.wait(lambda: not cluster.running(victim), 30)
        assert crashed, f"{victim} never reached {point} #{nth} (cycle {cycle})"
        # it ended at the point, not of anything else
        assert cluster.exit_code(victim) == CRASH_EXIT_CODE, cluster.logs()
        assert f"crash point {point} reached" in cluster.log_text(victim)
        crashes += 1
        others = [n for n in cluster.names if n != victim]
        assert_recovers(cluster, others)
    cluster.start_node(victim)
    caught_up = cluster.wait_caught_up(victim, CATCH_UP_BOUND_S)
    assert caught_up is not None, f"{victim} did not come back after crashing at {point}"
    finish(cluster, load, f"crash-point-{point}", victim=victim, crashes=crashes)


@pytest.mark.full
@pytest.mark.parametrize("point", ["commit.before_write", "commit.after_write"])
def test_every_validator_crashes_at_the_same_commit_point(
    make_cluster: ClusterFactory, seed: int, point: str
) -> None:
    """All four die in the commit path of (about) the same block: a power cut of the
    whole network at its most delicate instant. They restart from disk, consistent."""
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=30, rate_per_s=15)
    time.sleep(3)
    nth = 8
    before = cluster.max_height()
    _power_cut(cluster)  # same head everywhere (give or take the block in flight)
    for name in cluster.names:
        cluster.start_node(name, Faults(crash_at=f"{point}:{nth}"))
    cluster.wait(lambda: not any(cluster.running(n) for n in cluster.names), 40)
    reached = [n for n in cluster.names if cluster.crashed_at_point(n)]
    logged = [n for n in cluster.names if f"crash point {point}" in cluster.log_text(n)]
    assert set(reached) <= set(logged), (reached, logged)
    # Two dead in the commit path leave no quorum: the others are stuck before the
    # point; cut their power too.
    _power_cut(cluster)
    assert len(reached) >= 2, f"only {reached} reached {point}"
    for name in cluster.names:
        cluster.start_node(name)
    progress = _liveness_after_full_restart(cluster, LIVENESS_BOUND_S + 15, before + nth)
    finish(cluster, load, f"all-crash-{point}", reached=reached, progress_s=round(progress, 2))
