"""An idle height waits before its round 0 (``empty_block_interval_ms``): what starts
it, what does not, and that waiting changes no rule that decides (docs/consensus.md,
"An idle network"). The cores here start at height 2: height 1 never waits."""

from __future__ import annotations

from dataclasses import replace

from node.consensus import Signer, Step
from node.consensus.effects import Commit, Effect, RequestValue, ScheduleTimeout
from node.consensus.events import TxsAvailable
from tests.sim.fixtures import CHAIN_ID, KEYS, index_of
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
H = 2


def idle(proposer: bool = False, **kwargs: object) -> Harness:
    """A core at height 2: round 0's proposer, or (default) a validator that is not."""
    probe = Harness()
    first = index_of(probe.validators, probe.validators.proposer(H, 0))
    me = first if proposer else (first + 1) % 4
    return Harness(me=me, timeouts=IDLE, height=H, **kwargs)


def others(h: Harness, count: int) -> list[int]:
    """``count`` validators other than the core's own and round 0's proposer."""
    mine = index_of(h.validators, h.core.public_key or b"")
    first = index_of(h.validators, h.validators.proposer(H, 0))
    return [i for i in range(4) if i not in (mine, first)][:count]


def propose(h: Harness, value: bytes) -> list[Effect]:
    out = h.core.on_proposal(h.proposal(0, value, height=H))
    return out + h.core.on_validation_result(H, value, True)


def test_an_idle_height_waits_with_only_the_heartbeat_scheduled() -> None:
    h = idle(proposer=True)
    timers = of(h.start_effects, ScheduleTimeout)
    assert h.core.step == Step.WAIT and h.core.waiting
    assert [(t.step, t.duration_ms) for t in timers] == [(Step.WAIT, INTERVAL)]
    assert not of(h.start_effects, RequestValue)  # the proposer builds nothing yet


def test_height_one_and_a_zero_interval_never_wait() -> None:
    first = Harness(timeouts=IDLE)  # a new chain's first block is made at once
    assert first.core.height == 1 and first.core.step == Step.PROPOSE
    eager = Harness(height=H)
    assert eager.core.step == Step.PROPOSE and not eager.core.waiting


def test_transactions_start_round_zero_and_the_proposer_builds() -> None:
    h = idle(proposer=True)
    out = h.core.handle(TxsAvailable(H))
    assert h.core.step == Step.PROPOSE
    assert of(out, RequestValue) == [RequestValue(H, 0)]
    assert [t.step for t in of(out, ScheduleTimeout)] == [Step.PROPOSE]


def test_txs_for_another_height_or_after_the_start_change_nothing() -> None:
    h = idle()
    assert h.core.on_txs_available(H + 1) == [] and h.core.waiting
    h.core.on_txs_available(H)
    assert h.core.on_txs_available(H) == [] and h.core.step == Step.PROPOSE


def test_the_heartbeat_starts_round_zero() -> None:
    h = idle(proposer=True)
    out = h.core.on_timeout(H, 0, Step.WAIT)
    assert h.core.step == Step.PROPOSE and of(out, RequestValue)


def test_round_zero_proposal_starts_a_waiting_validator_and_it_prevotes() -> None:
    """The proposer had transactions this validator has not seen yet: it must not sit
    out the round (its prevote may be the one the block needs)."""
    h = idle()
    out = propose(h, A)
    assert h.core.step == Step.PREVOTE
    assert [(v.round, v.block_hash) for v in sent(out)] == [(0, A)]
    assert sent(h.core.on_timeout(H, 0, Step.WAIT)) == []  # a late heartbeat: nothing


def test_one_validator_started_is_not_enough_f_plus_one_is() -> None:
    """f (= 1) power in round 0 may be a byzantine validator making blocks for nothing;
    f+1 includes a correct one that has something to commit: join it."""
    h = idle()
    one, two = others(h, 2)
    h.core.on_vote(h.vote(one, PREVOTE, 0, b"", height=H))
    assert h.core.waiting
    out = h.core.on_vote(h.vote(two, PREVOTE, 0, b"", height=H))
    assert h.core.step == Step.PROPOSE
    assert [t.step for t in of(out, ScheduleTimeout)] == [Step.PROPOSE]


def test_f_plus_one_in_a_later_round_skips_to_it_without_waiting() -> None:
    h = idle()
    for i in others(h, 2):
        h.core.on_vote(h.vote(i, PREVOTE, 2, b"", height=H))
    assert (h.core.round, h.core.step) == (2, Step.PROPOSE)


def test_a_waiting_validator_decides_on_a_quorum_of_precommits() -> None:
    """Rule 49 has no step condition: waiting never keeps a decided block from commit."""
    h = idle()
    h.core.on_validation_result(H, A, True)  # valid(v) known before the proposal
    h.core.on_proposal(h.proposal(0, A, height=H))
    mine = index_of(h.validators, h.core.public_key or b"")
    out: list[Effect] = []
    for i in [i for i in range(4) if i != mine]:
        out += h.core.on_vote(h.vote(i, PRECOMMIT, 0, A, height=H))
    assert [c.block_hash for c in of(out, Commit)] == [A]


def test_the_next_height_waits_again() -> None:
    h = idle()
    h.core.on_txs_available(H)
    out = h.core.on_block_committed(H)
    assert (h.core.height, h.core.step) == (H + 1, Step.WAIT)
    assert [(t.height, t.step) for t in of(out, ScheduleTimeout)] == [(H + 1, Step.WAIT)]


def test_a_restart_after_signing_at_this_height_resumes_without_waiting() -> None:
    probe = idle()
    me = index_of(probe.validators, probe.core.public_key or b"")
    signer = Signer(KEYS[me], CHAIN_ID)
    signer.sign_vote(PREVOTE, H, 0, b"")
    h = idle(signer=signer)
    assert (h.core.round, h.core.step) == (0, Step.PROPOSE)
