"""Waiting for a task one has just cancelled, without swallowing one's own cancellation.

The usual ``task.cancel(); with suppress(CancelledError): await task`` in a ``finally``
block has a trap: if the task doing the clean-up is itself cancelled while it awaits,
the ``CancelledError`` it receives is its own, and the ``suppress`` drops it — the
cancelled task carries on (a peer link's teardown did this, and a state sync's dial
loop went on dialling after it was cancelled). :func:`reap` tells the two apart with
``Task.cancelling()``: the awaited task's cancellation is expected and dropped, the
caller's own is raised again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def reap(task: Awaitable[object], *ignored: type[BaseException]) -> None:
    """Await ``task`` (cancelled by the caller), dropping its cancellation and the
    ``ignored`` errors it ends with; a cancellation of the calling task is raised."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except ignored:
        pass
