"""The rails as pure functions: directed cases, then random sets and changes (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.governance_rails import Change, Seat, apply_changes, check_rails, largest_share

K = [bytes([i]) * 32 for i in range(12)]
ORGS = ["a", "b", "c", "d", "e", "f"]


def four() -> list[Seat]:
    return [Seat(K[i], 1, ORGS[i]) for i in range(4)]


def all_live(height: int = 100) -> dict[bytes, int | None]:
    return dict.fromkeys(K, height)


def rails(
    current: list[Seat], changes: list[Change], signed: dict[bytes, int | None]
) -> str | None:
    return check_rails(current, changes, signed, 100, 10, 4)


def test_adding_a_fifth_independent_validator_passes() -> None:
    signed = all_live() | {K[4]: None}
    assert rails(four(), [Change(K[4], 1, "e")], signed) is None


def test_minimum_validators() -> None:
    assert rails(four(), [Change(K[0], 0, "a")], all_live()) == "rail_min_validators"
    # growing a set still under the minimum is the way out of it
    three = four()[:3]
    assert rails(three, [Change(K[4], 1, "e")], all_live()) is None
    assert rails(three, [Change(K[0], 0, "a")], all_live()) == "rail_min_validators"


def test_one_organisation_may_not_reach_a_third() -> None:
    assert rails(four(), [Change(K[0], 2, "a")], all_live()) == "rail_org_power"
    # a second key of an organisation counts with its first
    signed = all_live() | {K[4]: 100}
    assert rails(four(), [Change(K[4], 1, "a")], signed) == "rail_org_power"


def test_voting_in_a_node_that_is_not_running_cannot_halt_the_chain() -> None:
    # the Besu failure: a validator whose node never signs, while one is already down
    stale = all_live() | {K[0]: 50, K[4]: None}
    assert rails(four(), [Change(K[4], 1, "e")], stale) == "rail_liveness"
    # once the down one signs again, the same change passes
    assert rails(four(), [Change(K[4], 1, "e")], stale | {K[0]: 95}) is None
    # five of power 3 and a new one of power 4 (under a third) that never signs
    seats = [Seat(K[i], 3, ORGS[i]) for i in range(5)]
    signed = all_live() | {K[0]: 10, K[5]: None}
    assert check_rails(seats, [Change(K[5], 4, "f")], signed, 100, 10, 4) == "rail_liveness"


def test_one_unsigned_validator_pending_at_a_time() -> None:
    seats = [Seat(K[i], 3, ORGS[i]) for i in range(5)] + [Seat(K[5], 1, "f")]
    signed = all_live() | {K[5]: None, K[6]: None}
    assert rails(seats, [Change(K[6], 1, "a2")], signed) == "rail_unsigned_pending"


# --- random sets and changes ----------------------------------------------------------------

seat_lists = st.lists(
    st.tuples(st.integers(0, 11), st.integers(1, 5), st.sampled_from(ORGS)),
    min_size=1,
    max_size=10,
    unique_by=lambda t: t[0],
).map(lambda items: [Seat(K[i], p, o) for i, p, o in items])
changes = st.lists(
    st.tuples(st.integers(0, 11), st.integers(0, 5), st.sampled_from(ORGS)).map(
        lambda t: Change(K[t[0]], t[1], t[2])
    ),
    min_size=1,
    max_size=4,
)
signed_maps = st.dictionaries(
    st.sampled_from(K), st.one_of(st.none(), st.integers(0, 100)), max_size=12
)


@settings(max_examples=600, deadline=None)
@given(seat_lists, changes, signed_maps, st.integers(1, 6))
def test_an_accepted_change_keeps_every_rail(
    current: list[Seat],
    change: list[Change],
    signed: dict[bytes, int | None],
    minimum: int,
) -> None:
    height, window = 100, 10
    if check_rails(current, change, signed, height, window, minimum) is not None:
        return
    after = apply_changes(current, change)
    assert len(after) >= minimum or len(after) > len(current)
    top, total = largest_share(after)
    top_before, total_before = largest_share(current)
    assert total > 0
    # no organisation at a third, unless the change strictly lowered the largest share
    assert 3 * top < total or top * total_before < top_before * total
    live = sum(s.power for s in after if (signed.get(s.public_key) or -1) >= height - window)
    assert 3 * live > 2 * total
    assert sum(1 for s in after if signed.get(s.public_key) is None) <= 1


@settings(max_examples=300, deadline=None)
@given(seat_lists, changes, signed_maps)
def test_rails_are_a_pure_function(
    current: list[Seat], change: list[Change], signed: dict[bytes, int | None]
) -> None:
    first = check_rails(current, change, signed, 100, 10, 4)
    assert first == check_rails(list(current), list(change), dict(signed), 100, 10, 4)
