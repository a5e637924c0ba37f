"""A validator not heard from for a few heights, or whose last turns brought no proposal,
has its round-0 proposals awaited only briefly (node/silence.py): its heights no longer
cost the whole propose timeout."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.votes import Vote, VoteType
from node.consensus import effects as fx
from node.consensus.types import Step
from node.silence import MISSED_TURNS, QUIET_HEIGHTS, SILENT_PROPOSE_MS, SilenceWatch
from tests.unit.node.chainkit import CHAIN, VALIDATOR_KEYS, Kit
from tests.unit.node.test_proposer import FakeMempool, make_driver

KEYS = [k.public_key for k in VALIDATOR_KEYS]
FULL_MS = 2000


def test_a_validator_heard_at_every_height_is_never_silent() -> None:
    watch = SilenceWatch()
    for height in range(1, 50):
        watch.heard(KEYS[1], height, height, KEYS)
        assert not watch.silent(KEYS[1], height)
        assert watch.propose_ms(KEYS[1], height, 0, FULL_MS) == FULL_MS


def test_silent_after_quiet_heights_and_heard_again_at_the_first_vote(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "cityledger.consensus")
    watch = SilenceWatch()
    watch.heard(KEYS[1], 10, 10, KEYS)
    assert watch.propose_ms(KEYS[1], 10 + QUIET_HEIGHTS, 0, FULL_MS) == FULL_MS
    assert watch.propose_ms(KEYS[1], 11 + QUIET_HEIGHTS, 0, FULL_MS) == SILENT_PROPOSE_MS
    assert watch.propose_ms(KEYS[1], 12 + QUIET_HEIGHTS, 0, FULL_MS) == SILENT_PROPOSE_MS
    assert caplog.text.count("has sent no vote") == 1, "said once, not at every height"
    watch.heard(KEYS[1], 12 + QUIET_HEIGHTS, 12 + QUIET_HEIGHTS, KEYS)
    assert watch.propose_ms(KEYS[1], 13 + QUIET_HEIGHTS, 0, FULL_MS) == FULL_MS
    assert "is heard again" in caplog.text


def test_never_heard_counts_from_the_first_height_watched() -> None:
    watch = SilenceWatch()
    assert not watch.silent(KEYS[2], 100)  # a node that just started suspects nobody
    assert not watch.silent(KEYS[2], 100 + QUIET_HEIGHTS)
    assert watch.silent(KEYS[2], 101 + QUIET_HEIGHTS)


def test_only_round_zero_is_cut_short() -> None:
    """Later rounds keep the full, growing timeouts the protocol's liveness needs."""
    watch = SilenceWatch()
    watch.silent(KEYS[1], 1)
    height = 2 + QUIET_HEIGHTS
    assert watch.propose_ms(KEYS[1], height, 0, FULL_MS) == SILENT_PROPOSE_MS
    assert watch.propose_ms(KEYS[1], height, 1, FULL_MS + 250) == FULL_MS + 250
    assert watch.propose_ms(KEYS[1], height, 0, 200) == 50, "a quarter of a short timeout"


def test_old_messages_and_strangers_are_not_kept() -> None:
    """A vote relayed from a height long past says nothing about now; a key outside the
    set is not kept at all (the watch is bounded by the validator set)."""
    watch = SilenceWatch()
    watch.silent(KEYS[1], 1)
    watch.heard(KEYS[1], 5, 20, KEYS)  # an old vote, seen at height 20
    assert watch.silent(KEYS[1], 20)
    stranger = b"\x07" * 32
    watch.heard(stranger, 20, 20, KEYS)
    assert watch.tracked() == 0
    watch.heard(KEYS[1], 21, 20, KEYS)  # one ahead of us: alive
    assert not watch.silent(KEYS[1], 21)
    watch.forget_all_but(KEYS[2:])  # KEYS[1] left the set
    assert watch.tracked() == 0


@given(st.lists(st.tuples(st.sampled_from(range(4)), st.integers(0, 60)), max_size=200))
def test_the_wait_is_full_or_short_and_short_only_for_the_quiet(
    events: list[tuple[int, int]],
) -> None:
    """Whatever was heard: round 0 of a validator heard within the last QUIET_HEIGHTS
    heights waits the full timeout, anything else at most SILENT_PROPOSE_MS, and the
    watch holds no more than the set."""
    watch = SilenceWatch()
    watch.silent(KEYS[0], 0)
    last: dict[int, int] = {}
    for who, height in sorted(events, key=lambda e: e[1]):
        watch.heard(KEYS[who], height, height, KEYS)
        last[who] = height
        for v in range(4):
            wait = watch.propose_ms(KEYS[v], height, 0, FULL_MS)
            quiet = height - last.get(v, 0) > QUIET_HEIGHTS
            assert wait == (SILENT_PROPOSE_MS if quiet else FULL_MS)
    assert watch.tracked() <= len(KEYS)


def test_a_validator_that_votes_but_withholds_its_proposals_is_waited_for_briefly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "cityledger.consensus")
    watch = SilenceWatch()
    height = 1
    for turn in range(MISSED_TURNS):
        watch.heard(KEYS[2], height, height, KEYS)  # it votes at every height
        assert watch.propose_ms(KEYS[2], height, 0, FULL_MS) == FULL_MS, turn
        watch.turn_over(KEYS[2], proposed=False)
        height += 4
    watch.heard(KEYS[2], height, height, KEYS)
    assert not watch.silent(KEYS[2], height), "it is not silent: it votes"
    assert watch.withholding(KEYS[2])
    assert watch.propose_ms(KEYS[2], height, 0, FULL_MS) == SILENT_PROPOSE_MS
    assert watch.propose_ms(KEYS[2], height, 1, FULL_MS + 250) == FULL_MS + 250, "round 0 only"
    watch.turn_over(KEYS[2], proposed=False)
    watch.heard(KEYS[2], height + 4, height + 4, KEYS)  # its votes do not end it
    assert watch.propose_ms(KEYS[2], height + 4, 0, FULL_MS) == SILENT_PROPOSE_MS
    assert caplog.text.count(f"has not proposed at its last {MISSED_TURNS} turns") == 1
    watch.turn_over(KEYS[2], proposed=True)  # a proposal, even a late one, does
    watch.heard(KEYS[2], height + 8, height + 8, KEYS)
    assert watch.propose_ms(KEYS[2], height + 8, 0, FULL_MS) == FULL_MS
    assert "proposed again" in caplog.text


def test_one_missed_turn_is_not_withholding() -> None:
    """An honest proposer's round 0 fails now and then (a late block, a lost frame):
    a proposal between misses starts the count again."""
    watch = SilenceWatch()
    for _ in range(10):
        for _ in range(MISSED_TURNS - 1):
            watch.turn_over(KEYS[1], proposed=False)
        assert not watch.withholding(KEYS[1])
        watch.turn_over(KEYS[1], proposed=True)
    assert watch.propose_ms(KEYS[1], 1, 0, FULL_MS) == FULL_MS


def test_a_silent_validator_heard_again_gets_the_full_wait_back() -> None:
    """The turns a stopped validator missed were its silence: once it votes again it is
    waited for in full, not treated as withholding."""
    watch = SilenceWatch()
    watch.heard(KEYS[3], 1, 1, KEYS)
    for _ in range(MISSED_TURNS + 1):
        watch.turn_over(KEYS[3], proposed=False)
    height = 2 + QUIET_HEIGHTS
    assert watch.propose_ms(KEYS[3], height, 0, FULL_MS) == SILENT_PROPOSE_MS
    watch.heard(KEYS[3], height, height, KEYS)
    assert not watch.withholding(KEYS[3])
    assert watch.propose_ms(KEYS[3], height + 1, 0, FULL_MS) == FULL_MS


@given(st.lists(st.tuples(st.sampled_from(range(4)), st.booleans()), max_size=200))
def test_withholding_is_exactly_the_last_turns_without_a_proposal(
    turns: list[tuple[int, bool]],
) -> None:
    """Whatever turns pass: a validator is waited for briefly exactly when its last
    MISSED_TURNS turns (or more) brought no proposal; the watch holds no more than the set."""
    watch = SilenceWatch()
    misses: dict[int, int] = {}
    for who, proposed in turns:
        watch.heard(KEYS[who], 1, 1, KEYS)
        watch.turn_over(KEYS[who], proposed)
        misses[who] = 0 if proposed else misses.get(who, 0) + 1
        for v in range(4):
            wait = watch.propose_ms(KEYS[v], 1, 0, FULL_MS)
            assert wait == (SILENT_PROPOSE_MS if misses.get(v, 0) >= MISSED_TURNS else FULL_MS)
    watch.forget_all_but(KEYS[:2])
    assert watch.tracked() <= 2


def _prevote(signer: int, height: int) -> Vote:
    return Vote.create(VALIDATOR_KEYS[signer], CHAIN, VoteType.PREVOTE, height, 0, b"\x01" * 32)


def test_the_driver_waits_briefly_for_a_stopped_validators_proposal() -> None:
    kit = Kit()
    driver = make_driver(kit, FakeMempool([]), [])
    validators = driver.core.validators
    stopped = next(k for k in KEYS[1:] if k != driver.core.public_key)
    first = 1
    height = next(
        h for h in range(first + QUIET_HEIGHTS + 1, 100) if validators.proposer(h, 0) == stopped
    )
    own = next(h for h in range(first, 100) if validators.proposer(h, 0) == driver.core.public_key)

    def delay(h: int, round_: int = 0) -> int:
        driver.core.height = h  # type: ignore[misc]
        return driver._delay_ms(fx.ScheduleTimeout(h, round_, Step.PROPOSE, FULL_MS))

    assert delay(first) == FULL_MS
    for h in range(first, height + 1):  # every other validator votes at every height
        for signer in range(4):
            if KEYS[signer] != stopped:
                driver.on_vote(_prevote(signer, h))
    assert delay(height) == SILENT_PROPOSE_MS
    assert delay(height, 1) == FULL_MS
    assert delay(own) == FULL_MS, "its own proposal: never cut short"
    driver.on_vote(_prevote(KEYS.index(stopped), height))
    assert delay(height) == FULL_MS


class _Round:
    def __init__(self, proposal: object) -> None:
        self.proposal = proposal


def test_the_driver_counts_a_missed_turn_from_the_cores_round_zero() -> None:
    """At each commit the driver asks the core which rounds hold a proposal (in time or
    late, its own included): round 0's tells the watch whether its proposer proposed;
    the rest goes to the round watch, whose rounds without one admission leaves out."""
    kit = Kit()
    driver = make_driver(kit, FakeMempool([]), [])
    core = driver.core
    validators = core.validators
    others = [h for h in range(1, 40) if validators.proposer(h, 0) != core.public_key]
    own = next(h for h in range(1, 40) if validators.proposer(h, 0) == core.public_key)
    withholder = validators.proposer(others[0], 0)
    turns = [h for h in others if validators.proposer(h, 0) == withholder]
    rounds: dict[int, _Round] = {1: _Round(object())}  # round 1's proposal came
    core.round_state = rounds.get  # type: ignore[attr-defined]
    for h in turns[:MISSED_TURNS]:
        assert driver.silence.decided(driver.core, h, 1) == {1}
    assert driver.silence.withholding(withholder)
    for _ in range(MISSED_TURNS):
        driver.silence.decided(driver.core, own, 1)  # our own turns never count
    assert not driver.silence.withholding(core.public_key)
    rounds[0] = _Round(object())  # a round-0 proposal, even one that came late
    assert driver.silence.decided(driver.core, turns[MISSED_TURNS], 1) == {0, 1}
    assert not driver.silence.withholding(withholder)


def test_the_line_says_the_wait_it_sets(caplog: pytest.LogCaptureFixture) -> None:
    """A quarter of a short timeout is what is awaited, and what the line says."""
    caplog.set_level(logging.INFO, "cityledger.consensus")
    watch = SilenceWatch()
    watch.silent(KEYS[1], 1)
    assert watch.propose_ms(KEYS[1], 2 + QUIET_HEIGHTS, 0, 200) == 50
    assert "awaited 50 ms, not 200" in caplog.text
