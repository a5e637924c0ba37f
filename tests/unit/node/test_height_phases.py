"""Where a height's time goes (node/height_phases.py): the phases between this
validator's marks, only for heights decided in round 0 with every mark in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.height_phases import PHASES, HeightPhases


def test_the_phases_of_a_height_run_from_the_last_commit_to_the_decision() -> None:
    phases = HeightPhases(started=10.0)
    phases.built(5, began=10.2, seconds=0.15)
    phases.mark(5, "proposal", 10.35)
    phases.mark(5, "prevote", 10.36)
    phases.mark(5, "precommit", 10.45)
    got = phases.committed(5, 0, 10.5)
    assert got == pytest.approx(
        {
            "propose": 0.35,
            "wait": 0.2,
            "build": 0.15,
            "validate": 0.01,
            "prevotes": 0.09,
            "precommits": 0.05,
        }
    )
    # the next height runs from that commit; a validator that did not build has no
    # wait or build of its own
    phases.mark(6, "proposal", 10.8)
    phases.mark(6, "prevote", 10.9)
    phases.mark(6, "precommit", 11.0)
    assert phases.committed(6, 0, 11.1) == pytest.approx(
        {"propose": 0.3, "validate": 0.1, "prevotes": 0.1, "precommits": 0.1}
    )


def test_only_the_first_of_each_mark_counts() -> None:
    phases = HeightPhases(started=0.0)
    for what, at in (("proposal", 1.0), ("proposal", 1.5), ("prevote", 2.0), ("precommit", 3.0)):
        phases.mark(1, what, at)
    phases.mark(1, "prevote", 2.5)  # a re-send
    assert phases.committed(1, 0, 4.0) == pytest.approx(
        {"propose": 1.0, "validate": 1.0, "prevotes": 1.0, "precommits": 1.0}
    )


def test_a_height_decided_after_round_0_or_missing_a_mark_is_not_measured() -> None:
    phases = HeightPhases(started=0.0)
    for what, at in (("proposal", 1.0), ("prevote", 2.0), ("precommit", 3.0)):
        phases.mark(1, what, at)
    assert phases.committed(1, 1, 9.0) is None  # round 1: the timeouts' time
    phases.mark(2, "prevote", 9.5)  # a nil prevote: the proposal never came in round 0
    phases.mark(2, "precommit", 9.6)
    assert phases.committed(2, 0, 10.0) is None
    phases.mark(3, "proposal", 10.5)
    phases.mark(3, "prevote", 10.6)
    phases.mark(3, "precommit", 10.7)
    assert phases.committed(3, 0, 11.0) is not None  # each height starts afresh


def test_a_height_passed_by_catch_up_is_not_measured_and_the_next_starts_then() -> None:
    phases = HeightPhases(started=0.0)
    phases.mark(1, "proposal", 1.0)
    phases.passed(1, 5.0)  # the block came by catch-up
    for what, at in (("proposal", 5.5), ("prevote", 5.6), ("precommit", 5.7)):
        phases.mark(2, what, at)
    assert phases.committed(2, 0, 6.0) == pytest.approx(
        {"propose": 0.5, "validate": 0.1, "prevotes": 0.1, "precommits": 0.3}
    )


def test_marks_out_of_order_are_not_measured() -> None:
    """A nil prevote cast on timeout, then the proposal: no phase may be negative."""
    phases = HeightPhases(started=0.0)
    phases.mark(1, "prevote", 1.0)
    phases.mark(1, "proposal", 1.5)
    phases.mark(1, "precommit", 2.0)
    assert phases.committed(1, 0, 3.0) is None


def test_marks_of_another_height_do_not_leak_into_this_one() -> None:
    phases = HeightPhases(started=0.0)
    phases.mark(1, "proposal", 0.5)
    phases.built(1, began=0.1, seconds=0.3)
    phases.mark(2, "proposal", 0.6)  # a proposal of the next height, buffered early
    phases.mark(2, "prevote", 0.7)
    phases.mark(2, "precommit", 0.8)
    assert phases.committed(2, 0, 1.0) == pytest.approx(
        {"propose": 0.6, "validate": 0.1, "prevotes": 0.1, "precommits": 0.2}
    )


_MARK = st.sampled_from(("proposal", "prevote", "precommit"))


@given(
    st.lists(st.tuples(st.integers(1, 4), _MARK, st.floats(0, 100, allow_nan=False)), max_size=30),
    st.integers(1, 4),
    st.integers(0, 2),
    st.floats(0, 100, allow_nan=False),
)
def test_phases_are_never_negative_and_add_up_to_the_height(
    marks: list[tuple[int, str, float]], height: int, round_: int, now: float
) -> None:
    phases = HeightPhases(started=0.0)
    for h, what, at in marks:
        phases.mark(h, what, at)
    got = phases.committed(height, round_, now)
    if got is None:
        return
    assert round_ == 0
    assert set(got) <= set(PHASES)
    assert all(seconds >= 0 for seconds in got.values())
    parts = got["propose"] + got["validate"] + got["prevotes"] + got["precommits"]
    assert parts == pytest.approx(now)
