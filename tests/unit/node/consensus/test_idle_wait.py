"""An idle height waits before its round 0 (``empty_block_interval_ms``): what starts
it, what does not, and that waiting changes no rule that decides (docs/consensus.md,
"An idle network")."""

from __future__ import annotations

from dataclasses import replace

from node.consensus import Signer, Step
from node.consensus.effects import Commit, RequestValue, ScheduleTimeout
from node.consensus.events import TxsAvailable
from tests.sim.fixtures import CHAIN_ID, KEYS
from tests.unit.node.consensus.core_kit import (
    PRECOMMIT,
    PREVOTE,
    TIMEOUTS,
    A,
    Harness,
    of,
    sent,
)

INTERVAL = 60_000
IDLE = replace(TIMEOUTS, empty_block_interval_ms=INTERVAL)


def idle(me: int = 0, **kwargs: object) -> Harness:
    return Harness(me=me, timeouts=IDLE, **kwargs)


def test_an_idle_height_waits_with_only_the_heartbeat_scheduled() -> None:
    h = idle(me=1)  # v1 proposes round 0 of height 1
    timers = of(h.start_effects, ScheduleTimeout)
    assert h.core.step == Step.WAIT and h.core.waiting
    assert [(t.step, t.duration_ms) for t in timers] == [(Step.WAIT, INTERVAL)]
    assert not of(h.start_effects, RequestValue)  # the proposer builds nothing yet


def test_without_an_interval_round_zero_starts_at_once() -> None:
    h = Harness(me=1)
    assert h.core.step == Step.PROPOSE and not h.core.waiting
    assert of(h.start_effects, RequestValue)


def test_transactions_start_round_zero_and_the_proposer_builds() -> None:
    h = idle(me=1)
    out = h.core.handle(TxsAvailable(1))
    assert h.core.step == Step.PROPOSE
    assert of(out, RequestValue) == [RequestValue(1, 0)]
    assert [t.step for t in of(out, ScheduleTimeout)] == [Step.PROPOSE]


def test_txs_for_another_height_or_after_the_start_change_nothing() -> None:
    h = idle()
    assert h.core.on_txs_available(2) == [] and h.core.waiting
    h.core.on_txs_available(1)
    assert h.core.on_txs_available(1) == [] and h.core.step == Step.PROPOSE


def test_the_heartbeat_starts_round_zero() -> None:
    h = idle(me=1)
    out = h.core.on_timeout(1, 0, Step.WAIT)
    assert h.core.step == Step.PROPOSE and of(out, RequestValue)


def test_round_zero_proposal_starts_a_waiting_validator_and_it_prevotes() -> None:
    """The proposer had transactions this validator has not seen yet: it must not sit
    out the round (its prevote may be the one the block needs)."""
    h = idle()
    h.propose_valid(0, A)
    assert h.core.step == Step.PREVOTE
    votes = sent(h.core.on_timeout(1, 0, Step.WAIT))  # a late heartbeat: nothing more
    assert votes == []
    assert h.core.round_state(0).prevotes.votes[KEYS[0].public_key].block_hash == A


def test_one_validator_started_is_not_enough_f_plus_one_is() -> None:
    """f (= 1) power in round 0 may be a byzantine validator making blocks for nothing;
    f+1 includes a correct one that has something to commit: join it."""
    h = idle()
    h.votes([2], PREVOTE, 0, b"")
    assert h.core.waiting
    out = h.votes([3], PREVOTE, 0, b"")
    assert h.core.step == Step.PROPOSE
    assert [t.step for t in of(out, ScheduleTimeout)] == [Step.PROPOSE]


def test_f_plus_one_in_a_later_round_skips_to_it_without_waiting() -> None:
    h = idle()
    h.votes([2, 3], PREVOTE, 2, b"")
    assert (h.core.round, h.core.step) == (2, Step.PROPOSE)


def test_a_waiting_validator_decides_on_a_quorum_of_precommits() -> None:
    """Rule 49 has no step condition: waiting never keeps a decided block from commit."""
    h = idle()
    h.core.on_proposal(h.proposal(0, A))
    h.core.on_validation_result(1, A, True)
    out = h.votes([1, 2, 3], PRECOMMIT, 0, A)
    assert [c.block_hash for c in of(out, Commit)] == [A]


def test_the_next_height_waits_again() -> None:
    h = idle()
    h.core.on_txs_available(1)
    out = h.core.on_block_committed(1)
    assert (h.core.height, h.core.step) == (2, Step.WAIT)
    assert [(t.height, t.step) for t in of(out, ScheduleTimeout)] == [(2, Step.WAIT)]


def test_a_restart_after_signing_at_this_height_resumes_without_waiting() -> None:
    signer = Signer(KEYS[0], CHAIN_ID)
    signer.sign_vote(PREVOTE, 1, 0, b"")
    h = idle(signer=signer)
    assert (h.core.round, h.core.step) == (0, Step.PROPOSE)
