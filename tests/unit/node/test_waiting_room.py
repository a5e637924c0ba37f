"""The waiting room: submissions that found no room wait for a commit, in arrival order,
bounded in count, per client, and in time."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from node.waiting_room import WaitingRoom


class Room:
    """The budget's room, as the test sets it."""

    def __init__(self, free: int = 0) -> None:
        self.free = free

    def __call__(self) -> int:
        return self.free


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_waiting_request_is_let_in_when_a_commit_makes_room() -> None:
    room = Room()
    outcomes: list[str] = []
    waiting = WaitingRoom(room, max_wait_s=5.0, observe=outcomes.append)
    request = asyncio.ensure_future(waiting.wait("10.0.0.1", 40))
    await settle()
    assert len(waiting) == 1 and not request.done()
    waiting.opened()  # a commit, but still no room: it goes on waiting
    await settle()
    assert not request.done()
    room.free = 40
    waiting.opened()
    assert await request is True
    assert len(waiting) == 0 and outcomes == ["let_in"]


async def test_it_waits_no_longer_than_max_wait() -> None:
    outcomes: list[str] = []
    waiting = WaitingRoom(Room(), max_wait_s=0.02, observe=outcomes.append)
    assert await waiting.wait("10.0.0.1", 5) is False
    assert outcomes == ["timed_out"] and len(waiting) == 0
    assert await waiting.wait("10.0.0.1", 5) is False  # and may wait again
    assert outcomes == ["timed_out", "timed_out"]


async def test_waiters_are_let_in_oldest_first_while_the_room_lasts() -> None:
    room = Room()
    waiting = WaitingRoom(room, max_wait_s=5.0)
    requests = [asyncio.ensure_future(waiting.wait(f"10.0.0.{i}", 100)) for i in range(3)]
    await settle()
    room.free = 150  # the first takes 100; the second is let in on the 50 left (cut there)
    waiting.opened()
    await settle()
    assert [r.done() for r in requests] == [True, True, False]
    room.free = 1
    waiting.opened()
    assert await requests[2] is True


async def test_the_first_waiter_is_let_in_however_large() -> None:
    room = Room(10)
    waiting = WaitingRoom(room, max_wait_s=5.0)
    large = asyncio.ensure_future(waiting.wait("10.0.0.1", 5000))
    small = asyncio.ensure_future(waiting.wait("10.0.0.2", 1))
    await settle()
    waiting.opened()
    await settle()
    assert large.done() and not small.done()  # in order: the small one does not jump ahead
    small.cancel()


async def test_full_or_one_clients_share_taken_a_request_is_not_kept_waiting() -> None:
    outcomes: list[str] = []
    waiting = WaitingRoom(
        Room(), max_wait_s=5.0, max_requests=3, per_client=2, observe=outcomes.append
    )
    mine = [asyncio.ensure_future(waiting.wait("10.0.0.1", 1)) for _ in range(2)]
    await settle()
    assert await waiting.wait("10.0.0.1", 1) is False  # this client's places are taken
    other = asyncio.ensure_future(waiting.wait("10.0.0.2", 1))
    await settle()
    assert len(waiting) == 3
    assert await waiting.wait("10.0.0.3", 1) is False  # every place taken
    assert outcomes == ["no_place", "no_place"]  # and none timed out
    for request in [*mine, other]:
        request.cancel()
    await settle()
    assert len(waiting) == 0 and not waiting._by_client


async def test_no_wait_when_turned_off() -> None:
    off = WaitingRoom(Room(), max_wait_s=0.0)
    no_places = WaitingRoom(Room(), max_wait_s=1.0, max_requests=0)
    for waiting in (off, no_places):
        assert await waiting.wait("10.0.0.1", 1) is False
        assert len(waiting) == 0


async def test_a_client_that_goes_away_leaves_its_place() -> None:
    room = Room()
    waiting = WaitingRoom(room, max_wait_s=5.0, per_client=1)
    gone = asyncio.ensure_future(waiting.wait("10.0.0.1", 1))
    await settle()
    gone.cancel()  # the client closed its connection
    await settle()
    assert len(waiting) == 0 and not waiting._by_client
    again = asyncio.ensure_future(waiting.wait("10.0.0.1", 1))  # its place is free again
    await settle()
    room.free = 1
    waiting.opened()
    assert await again is True


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("come"), st.integers(0, 4), st.integers(1, 300)),
            st.tuples(st.just("commit"), st.integers(0, 600), st.just(0)),
            st.tuples(st.just("leave"), st.integers(0, 50), st.just(0)),
        ),
        max_size=40,
    )
)
def test_the_room_never_holds_more_than_its_bounds_and_lets_in_in_order(
    steps: list[tuple[str, int, int]],
) -> None:
    """Whatever comes, commits and leaves: never more than ``max_requests`` waiting, nor
    more than ``per_client`` of one client; those let in are let in in arrival order;
    each request ends let in, refused or gone, and the counts match."""

    async def run() -> None:
        room = Room()
        waiting = WaitingRoom(room, max_wait_s=60.0, max_requests=6, per_client=3)
        requests: list[asyncio.Future[bool]] = []
        order: list[int] = []
        for what, a, b in steps:
            if what == "come":
                request = asyncio.ensure_future(waiting.wait(f"c{a}", b))
                index = len(requests)
                request.add_done_callback(
                    lambda r, i=index: order.append(i) if not r.cancelled() and r.result() else None
                )
                requests.append(request)
            elif what == "commit":
                room.free = a
                waiting.opened()
            elif requests:
                requests[a % len(requests)].cancel()
            await settle()
            assert len(waiting) <= 6
            assert all(n <= 3 for n in waiting._by_client.values())
            assert sum(waiting._by_client.values()) == len(waiting)
        assert order == sorted(order)
        for request in requests:
            request.cancel()
        await settle()
        assert len(waiting) == 0 and not waiting._by_client

    asyncio.run(run())
