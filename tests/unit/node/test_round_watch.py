"""Why a height needed a second round (node/round_watch.py): the proposal timeout that
passed, the proposal that came after it, the height decided later — one INFO line each,
nothing when round 0 decides."""

from __future__ import annotations

import asyncio
import logging

import pytest

from node import startup
from node.consensus import events as ev
from node.consensus.types import Step
from node.round_watch import MAX_ROUNDS_KEPT, RoundWatch
from tests.unit.node.chainkit import VALIDATOR_KEYS, make_node, proposer_index

PROPOSER = bytes.fromhex("ab" * 32)


def consensus_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cityledger.consensus"]


def test_rounds_whose_proposal_never_came_are_returned_as_stalls() -> None:
    """What node/latency_budget.py leaves out of the waits it judges: each round that
    ended without its proposal, from its entry to the next round's, in seconds before
    the commit."""
    watch = RoundWatch()
    watch.entered(9, 0, 50.0)
    watch.timed_out(9, 0, PROPOSER, 0.0, 50.25)
    watch.entered(9, 1, 50.4)
    watch.timed_out(9, 1, PROPOSER, 0.0, 51.7)
    watch.entered(9, 2, 52.0)
    stalls = watch.committed(9, 2, 52.6, {2})  # the rounds whose proposal the core holds
    assert stalls == [
        (pytest.approx(2.6), pytest.approx(2.2)),
        (pytest.approx(2.2), pytest.approx(0.6)),
    ]
    watch.entered(10, 0, 53.0)
    assert watch.committed(10, 0, 53.5, {0}) == []
    watch.entered(11, 0, 54.0)
    watch.entered(11, 1, 54.3)  # round 0 had no proposal; round 1's came and failed
    watch.entered(11, 2, 56.0)
    assert watch.committed(11, 2, 56.5, {1, 2}) == [(pytest.approx(2.5), pytest.approx(2.2))]


def test_a_late_proposal_is_told_from_entry_to_decision(caplog: pytest.LogCaptureFixture) -> None:
    watch = RoundWatch()
    with caplog.at_level(logging.INFO, "cityledger.consensus"):
        watch.entered(7, 0, 100.0)
        watch.timed_out(7, 0, PROPOSER, 0.02, 101.0)
        watch.proposal_arrived(7, 0, PROPOSER, 1.0, 101.4, block_age_s=0.9)
        watch.entered(7, 1, 102.3)
        watch.proposal_arrived(7, 1, PROPOSER, 1.25, 102.5, block_age_s=0.2)  # in time
        stalls = watch.committed(7, 1, 103.9, {0, 1})
    assert stalls == [], "round 0's proposal came, late: load, not a proposer's fault"
    assert consensus_lines(caplog) == [
        "height 7 round 0: no proposal from abababababababab… 1.00 s into the round "
        "(the timer fired 0.02 s late); prevoting nil",
        "height 7 round 0: the proposal from abababababababab… came 1.40 s into the round, "
        "after the 1.00 s this node waited for it; its block was stamped 0.90 s before it "
        "arrived",
        "height 7 decided in round 1, 3.90 s after this node entered round 0",
    ]


def test_nothing_is_logged_when_round_0_decides(caplog: pytest.LogCaptureFixture) -> None:
    watch = RoundWatch()
    with caplog.at_level(logging.INFO, "cityledger.consensus"):
        for height in range(1, 50):
            watch.entered(height, 0, float(height))
            watch.proposal_arrived(height, 0, PROPOSER, 1.0, height + 0.3, block_age_s=0.3)
            watch.committed(height, 0, height + 0.8)
    assert consensus_lines(caplog) == []


def test_other_heights_and_far_rounds_are_not_kept(caplog: pytest.LogCaptureFixture) -> None:
    watch = RoundWatch()
    with caplog.at_level(logging.INFO, "cityledger.consensus"):
        watch.entered(3, 0, 0.0)
        watch.timed_out(2, 0, PROPOSER, 0.0, 1.0)  # a timer of a height already left
        watch.proposal_arrived(4, 0, PROPOSER, 1.0, 1.0, block_age_s=0.1)  # not entered
        watch.committed(3, 0, 1.5)
        watch.timed_out(3, 0, PROPOSER, 0.0, 2.0)  # height 3 is over
        for round_ in range(100):
            watch.entered(4, round_, float(round_))
    assert consensus_lines(caplog) == []
    assert len(watch._entered) == MAX_ROUNDS_KEPT


async def test_the_driver_logs_a_proposal_timeout_with_its_proposer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    me = next(i for i in range(4) if i != proposer_index(1, 0))
    node = make_node(VALIDATOR_KEYS[me])
    node.gossip.status_from |= {k.public_key for k in VALIDATOR_KEYS}
    await startup.start_consensus(node)
    driver = node.driver
    if driver.core.step == Step.WAIT:
        driver._run(driver.core.handle(ev.TxsAvailable(1)))
    assert (driver.core.height, driver.core.round, driver.core.step) == (1, 0, Step.PROPOSE)
    with caplog.at_level(logging.INFO, "cityledger.consensus"):
        driver._fire(ev.TimeoutFired(1, 0, Step.PROPOSE), asyncio.get_running_loop().time())
    proposer = VALIDATOR_KEYS[proposer_index(1, 0)].public_key.hex()[:16]
    [line] = consensus_lines(caplog)
    assert line.startswith(f"height 1 round 0: no proposal from {proposer}… ")
    assert line.endswith("prevoting nil")
    assert driver.core.step == Step.PREVOTE
    driver._cancel_timers()


def test_a_silent_proposers_rounds_are_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stopped validator's heights fail round 0 every n-th height for as long as it is
    down; node/silence.py says so once, and these lines go to DEBUG."""
    watch = RoundWatch()
    with caplog.at_level(logging.INFO, "cityledger.consensus"):
        watch.entered(9, 0, 10.0)
        watch.timed_out(9, 0, PROPOSER, 0.0, 10.25, expected=True)
        watch.entered(9, 1, 10.3)
        watch.committed(9, 1, 10.6)
        watch.entered(10, 0, 11.0)  # the next one, not foretold, is told as before
        watch.timed_out(10, 0, PROPOSER, 0.0, 13.0)
        watch.committed(10, 1, 14.0)
    assert consensus_lines(caplog) == [
        "height 10 round 0: no proposal from abababababababab… 2.00 s into the round "
        "(the timer fired 0.00 s late); prevoting nil",
        "height 10 decided in round 1, 3.00 s after this node entered round 0",
    ]
    with caplog.at_level(logging.DEBUG, "cityledger.consensus"):
        watch.entered(11, 0, 20.0)
        watch.timed_out(11, 0, PROPOSER, 0.0, 20.25, expected=True)
        watch.committed(11, 1, 20.6)
    assert "height 11 decided in round 1, 0.60 s" in caplog.text
