"""Seeded simulation of the consensus core: hundreds of scenarios, all checked.

Every scenario is a pure function of its seed (see tests/sim/world.py). A failure
prints the seed, the scenario and the last ~200 events, and the command that
reruns it. Seeds that once failed are pinned below with what they caught; no seed
is ever skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.sim.world import Result, World, generate, run_scenario

SCENARIOS = 400  # seeds 0..399: even seeds n=4 (f=1), odd seeds n=7 (f=2)
CHUNK = 20

# Seeds that failed during development, and the bug each one caught.
REGRESSION_SEEDS = {
    205: "equivocator's second vote ignored: honest nodes saw different polkas (liveness)",
    212: "equivocator's second vote ignored: locked node could never be unlocked",
    256: "equivocator's second vote ignored: no polka for the locked value's valid round",
    267: "equivocator's second vote ignored, with a twin (n=7)",
    292: "equivocator's second vote ignored, with an honest crash mid-event",
    356: "equivocator's second vote ignored, across partitions",
    393: "two double-voters of seven: polka never visible to all",
    1668: "crash lost our own signed prevote: every node stuck without a timer",
    2660: "crash lost our own signed votes under a withholder: stuck at height 1",
    5164: "crash lost our precommit of an earlier round: the others never left it",
    448: "idle growth check counted heights a node cut off until GST synced afterwards",
    694: "idle growth check counted synced heights (twin partition, n=4)",
    4262: "checker: a proposal signed before a crash and sent from the restarted core's log "
    "(gossip, not broadcast) was not counted as proposed",
    9110329: "idle prompt check took nine rounds lost to a withholder's slow proof of lock "
    "for a wait (n=7)",
    9114107: "idle prompt check took rounds lost to an equivocating proposer for a wait (n=7)",
}


def _check(results: list[Result]) -> None:
    failures = [r.report() for r in results if not r.ok]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    "chunk",
    range(SCENARIOS // CHUNK),
    ids=[f"seeds-{c * CHUNK}-{c * CHUNK + CHUNK - 1}" for c in range(SCENARIOS // CHUNK)],
)
def test_seeded_scenarios(chunk: int) -> None:
    _check([run_scenario(seed) for seed in range(chunk * CHUNK, (chunk + 1) * CHUNK)])


@pytest.mark.parametrize("seed", sorted(REGRESSION_SEEDS))
def test_regression_seed(seed: int) -> None:
    _check([run_scenario(seed)])


def test_checker_finds_a_fork_with_more_than_f_twins() -> None:
    """Two twins of four validators (f = 1) can fork: the checker must say so."""
    results = [run_scenario(seed, 4, twins=2) for seed in range(50)]
    forks = [r for r in results if any(v.startswith("agreement") for v in r.violations)]
    assert len(forks) >= 1
    assert "agreement: height" in forks[0].report()


def test_checker_finds_nothing_with_f_twins() -> None:
    """The same checker, the same seeds, f twins: no violation at all."""
    _check([run_scenario(seed, 4, twins=1) for seed in range(50)])
    _check([run_scenario(seed, 7, twins=2) for seed in range(20)])


def test_the_faults_are_really_exercised() -> None:
    totals: Counter[str] = Counter()
    for seed in range(60):
        totals.update(run_scenario(seed).stats)
    for what in (
        "evidence",  # double votes, equivocating proposers, twins, amnesia
        "synced",  # block sync after partitions and crashes
        "double_sign_refused",  # restarted signers refusing
        "dropped",
        "buffered",  # next-height messages
        "late_validation",  # asynchronous answers
        "equivocation",
        "unknown_validator",  # removed and rotated-out keys voting on, ignored
        "cut_short",  # round-0 waits for silent or withholding proposers (node/silence.py)
    ):
        assert totals[what] > 0, what
    assert totals["max_round"] > 0


def test_removed_keys_keep_voting_and_are_ignored() -> None:
    """Seeds whose set changes remove a key (a removal or a rotation): that key's node
    keeps signing votes after the effective height, no certificate an honest node
    commits from then on carries it, and an added key signs some."""
    removed_votes = added_signed = checked = 0
    for seed in range(40):
        world = World(generate(seed))
        _check([world.run()])
        changes = world.valsets.changes
        if not changes:
            continue
        checked += 1
        first = world.valsets.first
        for node in world.nodes.values():
            key, gone = node.key.public_key, node.removed_at
            if gone is not None:
                signed = world.recorder.signed.get(key, {})
                removed_votes += sum(1 for (h, _, _) in signed if h >= gone)
            for honest in (world.nodes[i] for i in world.honest_ids):
                for h, (_, cert) in enumerate(honest.chain, start=1):
                    if gone is not None and h >= gone:
                        assert key not in cert.signers, (seed, node.name, h)
                    added_signed += key not in first and key in cert.signers
    assert checked >= 30 and removed_votes > 0 and added_signed > 0


def test_runs_are_deterministic_even_across_hash_seeds() -> None:
    first, again = run_scenario(11), run_scenario(11)
    assert (first.heights, first.events, first.sim_time, first.stats) == (
        again.heights,
        again.events,
        again.sim_time,
        again.stats,
    )
    code = (
        "from tests.sim.world import run_scenario as r; x = r(11); "
        "print(x.heights, x.events, x.sim_time)"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert outputs == {f"{first.heights} {first.events} {first.sim_time}\n"}


def test_run_module_summary_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.sim.run import main

    assert main(["--seeds", "3", "--start", "4", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "scenarios: 3" in out and "violations: 0" in out and "wall time" in out
