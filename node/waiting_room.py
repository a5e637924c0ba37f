"""A short wait for room in the latency budget, instead of an immediate 429.

Above saturation every block takes the whole pool, so at each commit the next proposer
has nothing ready, and the clients turned away while the block ran come back only at the
turns they were told (node/latency_budget.py): the proposer waited 220-315 ms of each
~500 ms height for them, with the cores a quarter idle (measured 2026-12-07,
docs/performance.md "Where a height's time goes"). Here a submission that finds no room
waits — before its body is read, so what it costs is one open request — until a commit
makes room, and is let in at once, in the order the requests came, as far as the room
goes; a request still waiting after ``max_wait_s`` gets the 429 and its turn as before.

Bounded: at most ``max_requests`` wait, at most ``per_client`` of them from one client
address (one client cannot take every place and push the others back to plain 429s);
past that a request is refused at once. Nothing is decoded, admitted or promised while
it waits: the budget's checks all run again when it is let in.

Clock-free but for ``max_wait_s``, which is a timeout of the event loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_MAX_REQUESTS = 256
DEFAULT_PER_CLIENT = 64


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(slots=True, eq=False)  # each request is itself: found in the queue by identity
class _Waiter:
    client: str
    count: int  # transactions the request holds, about (its Content-Length)
    let_in: asyncio.Future[None] = field(default_factory=_future)


class WaitingRoom:
    """Submissions waiting for room in the latency budget, in arrival order."""

    def __init__(
        self,
        room: Callable[[], int],
        *,
        max_wait_s: float,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        per_client: int = DEFAULT_PER_CLIENT,
        observe: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        """``room``: how many more client transactions the budget takes now;
        ``max_wait_s`` 0 or ``max_requests`` 0: nobody waits; ``observe`` is told each
        request's outcome: ``let_in``, ``timed_out`` or ``no_place``."""
        self._room = room
        self._observe = observe
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self.per_client = per_client
        self._queue: deque[_Waiter] = deque()
        self._by_client: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._queue)

    async def wait(self, client: str, count: int) -> bool:
        """Wait for room for a request of about ``count`` transactions from ``client``:
        True when let in (the caller checks the budget again), False when it may not
        wait here or waited ``max_wait_s`` in vain."""
        if (
            self.max_wait_s <= 0
            or len(self._queue) >= self.max_requests
            or self._by_client[client] >= self.per_client
        ):
            if self.max_wait_s > 0 and self.max_requests > 0:
                self._observe("no_place")
            return False
        waiter = _Waiter(client, max(1, count))
        self._queue.append(waiter)
        self._by_client[client] += 1
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter.let_in
            return True
        except TimeoutError:
            self._observe("timed_out")
            return False
        finally:
            self._leave(waiter)

    def opened(self) -> None:
        """Room may have opened (a commit): let waiters in, oldest first, while the room
        lasts — the first of them always, however large (the budget cuts it)."""
        room = self._room()
        while self._queue and room > 0:
            waiter = self._queue.popleft()
            self._forget(waiter.client)
            if not waiter.let_in.done():
                waiter.let_in.set_result(None)
                self._observe("let_in")
                room -= waiter.count

    def _leave(self, waiter: _Waiter) -> None:
        try:
            self._queue.remove(waiter)
        except ValueError:
            return  # let in: already out of the queue and the client's count
        self._forget(waiter.client)

    def _forget(self, client: str) -> None:
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]
