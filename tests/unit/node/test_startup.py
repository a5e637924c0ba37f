"""The start-up gate (node/startup.py, finding F2) as a pure function: inputs to a
decision, no clock, no peers, no event loop."""

from __future__ import annotations

import pytest

from ledger.validators import Validator, ValidatorSet
from node.startup import (
    STARTUP_STALL_S,
    STARTUP_STATUS_WAIT_S,
    StartDecision,
    power_needed,
    start_decision,
)
from tests.unit.node.chainkit import VALIDATOR_KEYS

WAIT, CAUGHT_UP, STALLED = StartDecision.WAIT, StartDecision.CAUGHT_UP, StartDecision.STALLED


def decide(
    *,
    heard: int = 2,
    need: int = 2,
    waited_s: float = 0.0,
    head: int = 10,
    target: int = 11,
    stalled_s: float = 0.0,
) -> StartDecision:
    return start_decision(
        heard=heard, need=need, waited_s=waited_s, head=head, target=target, stalled_s=stalled_s
    )


def test_it_waits_to_hear_f_plus_1_power_before_anything_else() -> None:
    assert decide(heard=1, need=2, head=10, target=0) is WAIT  # caught up, but heard too few
    assert decide(heard=1, need=2, waited_s=STARTUP_STATUS_WAIT_S - 0.1, target=0) is WAIT
    assert decide(heard=2, need=2, target=0) is CAUGHT_UP


def test_nobody_reporting_in_time_lets_it_start_at_its_own_head() -> None:
    assert decide(heard=0, need=2, waited_s=STARTUP_STATUS_WAIT_S, head=0, target=0) is CAUGHT_UP


@pytest.mark.parametrize(("head", "target"), [(10, 11), (10, 5), (0, 1)])
def test_it_starts_once_its_next_height_reaches_the_target(head: int, target: int) -> None:
    assert decide(head=head, target=target) is CAUGHT_UP


def test_it_waits_while_behind_the_target_and_catch_up_progresses() -> None:
    assert decide(head=10, target=12, stalled_s=STARTUP_STALL_S - 0.1) is WAIT
    assert decide(head=10, target=500, waited_s=1e6, stalled_s=0.0) is WAIT


def test_a_stalled_catch_up_starts_anyway() -> None:
    assert decide(head=10, target=12, stalled_s=STARTUP_STALL_S) is STALLED
    # a stall does not skip the wait for the peers' heights
    assert decide(heard=0, need=2, head=10, target=12, stalled_s=STARTUP_STALL_S) is WAIT


def test_the_power_needed_is_f_plus_1_or_all_the_others() -> None:
    four = ValidatorSet(
        tuple(Validator(f"v{i}", k.public_key, 1) for i, k in enumerate(VALIDATOR_KEYS))
    )
    assert power_needed(four, VALIDATOR_KEYS[0].public_key) == 2  # f+1 of 4
    assert power_needed(four, b"\x07" * 32) == 2  # an observer's view: the same
    one = ValidatorSet((Validator("solo", VALIDATOR_KEYS[0].public_key, 1),))
    assert power_needed(one, VALIDATOR_KEYS[0].public_key) == 0  # nobody else to hear
    heavy = ValidatorSet(
        (
            Validator("big", VALIDATOR_KEYS[0].public_key, 10),
            Validator("small", VALIDATOR_KEYS[1].public_key, 1),
        )
    )
    assert power_needed(heavy, VALIDATOR_KEYS[0].public_key) == 1  # all the others have 1
