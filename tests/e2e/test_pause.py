"""SIGSTOP longer than the round timeouts, then SIGCONT: a validator that freezes (GC
pause, swapped out, VM migration) and wakes up with stale timers and links.

One of four paused: the others keep committing. Two of four paused: no quorum, so
no commits at all while they are stopped — then progress again once they resume.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.conftest import ClusterFactory
from tests.e2e.invariants import assert_recovers
from tests.e2e.scenario import finish, outage, start_load

PAUSE_S = 8.0  # round 0 timeouts are 1 s propose + 0.5 s prevote + 0.5 s precommit


@pytest.mark.full
def test_sigstop_one_validator_then_sigcont(make_cluster: ClusterFactory, seed: int) -> None:
    rng = random.Random(seed)
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=30)
    time.sleep(3)
    victim = rng.choice(cluster.names)
    progress, caught_up = outage(
        cluster, victim, down=cluster.pause, up=cluster.resume, down_s=PAUSE_S, catch_up_bound_s=30
    )
    recovery = assert_recovers(cluster)
    finish(
        cluster,
        load,
        "sigstop-one",
        victim=victim,
        progress_while_paused_s=round(progress, 2),
        catch_up_s=round(caught_up, 2),
        recovery_s=round(recovery, 2),
    )


@pytest.mark.full
def test_sigstop_two_of_four_stalls_then_recovers(make_cluster: ClusterFactory, seed: int) -> None:
    rng = random.Random(seed)
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=40)
    time.sleep(3)
    victims = rng.sample(cluster.names, 2)
    for v in victims:
        cluster.pause(v)
    running = [n for n in cluster.names if n not in victims]
    time.sleep(2)  # a block already certified may still land
    stalled_at = cluster.heights(running)
    time.sleep(PAUSE_S)
    after = cluster.heights(running)
    assert after == stalled_at, f"committed without a quorum: {stalled_at} -> {after}"
    for v in victims:
        cluster.resume(v)
    recovery = assert_recovers(cluster)
    finish(
        cluster,
        load,
        "sigstop-two",
        victims=victims,
        stalled_at=max(stalled_at.values()),
        recovery_s=round(recovery, 2),
    )
