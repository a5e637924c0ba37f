"""Idle periods then bursts in the simulator (tests/sim/idle.py): the seeds that wait
are many and pass, the waiting is really exercised, and the idle checks catch a
network that does not wait, or one that leaves transactions waiting for the heartbeat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from tests.sim.idle import check_idle, late_for_rounds
from tests.sim.node import SimNode
from tests.sim.world import SIM_TIMEOUTS, World, generate

SEEDS = range(120)


def _idle_seeds() -> list[int]:
    return [seed for seed in SEEDS if generate(seed).idle is not None]


def _interval(seed: int) -> int:
    plan = generate(seed).idle
    return 0 if plan is None else plan.interval_ms


def test_about_half_of_the_seeds_idle_and_all_of_them_pass() -> None:
    seeds = _idle_seeds()
    assert 40 <= len(seeds) <= 80
    stats: Counter[str] = Counter()
    for seed in seeds:
        world = World(generate(seed))
        result = world.run()
        assert result.ok, result.report()
        stats.update(result.stats)
        plan = world.config.idle
        assert plan is not None
        every = frozenset().union(*(b.txs for b in plan.bursts))
        assert all(every <= world.nodes[i].done_txs for i in world.honest_ids), seed
    # heights waited, and each way of ending a wait happened
    for what in ("waits", "started_by_txs", "started_by_heartbeat", "started_by_others"):
        assert stats[f"idle_{what}"] > 0, what


def test_idle_heights_are_paced_by_the_heartbeat_not_by_rounds() -> None:
    """After GST, an idle seed's chain grows at about one height per heartbeat (plus
    the bursts), whereas the same seed without waiting commits many more."""
    seed = next(s for s in _idle_seeds() if _interval(s) >= 3000)
    config = generate(seed)
    waiting = World(config).run()
    eager = World(replace(config, timeouts=SIM_TIMEOUTS)).run()
    assert waiting.ok, waiting.report()
    assert any(v.startswith("growth") for v in eager.violations), eager.violations


def test_a_height_that_waits_only_for_the_heartbeat_is_caught() -> None:
    """Transactions must start a height at once: a network whose nodes ignored them
    would commit them only at the heartbeat, which the prompt check refuses."""
    seed = next(s for s in _idle_seeds() if _interval(s) == 5000)
    config = generate(seed)
    world = World(config)
    for node in world.nodes.values():
        node.receive_txs = _deaf(node)  # type: ignore[method-assign]
    result = world.run()
    assert any(v.startswith("prompt") for v in result.violations), result.violations


def _deaf(node: SimNode) -> Callable[[frozenset[int]], None]:
    """``receive_txs`` that keeps transactions but never tells the waiting core."""

    def receive(txs: frozenset[int]) -> None:
        if node.core is not None:
            node.pending |= txs - node.done_txs

    return receive


def test_rounds_lost_to_consensus_are_not_taken_for_a_wait() -> None:
    """Seed 9110329: a withholder and an equivocating proposer among seven, the honest
    power exactly the quorum; the height that carries tx 3 is decided in round 9, 4.3 s
    after the transaction arrived, but the wait did its part (an honest proposer had it
    in 251 ms, every honest node ran round 0 at once). Each part of the exception, made
    false in the same world, brings the prompt violation back."""
    world = World(generate(9110329, 7))
    result = world.run()
    assert result.ok, result.report()
    plan = world.config.idle
    assert plan is not None
    burst = next(b for b in plan.bursts if 3 in b.txs)
    committed = world.tx_committed_everywhere(3)
    assert committed is not None and committed - burst.at > plan.commit_bound_ms
    height = world.tx_height[3]
    assert world.decided_round[height] > 0
    assert late_for_rounds(world, 3, burst.at, plan.commit_bound_ms)

    def prompt_violations() -> list[str]:
        return [v for v in check_idle(world) if v.startswith("prompt: tx 3 ")]

    assert prompt_violations() == []
    proposed = world.tx_proposed_at[3]
    world.tx_proposed_at[3] = burst.at + plan.commit_bound_ms + 1  # proposed only late
    assert prompt_violations()
    world.tx_proposed_at[3] = proposed
    honest = world.honest_ids[0]
    began = world.round0_at[honest, height]
    world.round0_at[honest, height] = burst.at + plan.commit_bound_ms + 1  # one node waited
    assert prompt_violations()
    world.round0_at[honest, height] = began
    world.decided_round[height] = 0  # decided in round 0, and still late: a wait
    assert prompt_violations()
