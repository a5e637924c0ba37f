"""node.reap: a cancelled child's end is awaited without swallowing the caller's own
cancellation (the trap ``suppress(CancelledError)`` sets in a clean-up)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest


async def _slow_to_stop(stopping: asyncio.Event) -> None:
    """A child that takes a moment to wind down once cancelled (a writer flushing)."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        stopping.set()
        await asyncio.sleep(0.1)
        raise


async def _clean_up_then_go_on(use_reap: bool, went_on: list[bool]) -> None:
    from node.reap import reap

    stopping = asyncio.Event()
    child = asyncio.create_task(_slow_to_stop(stopping))
    await asyncio.sleep(0)
    try:
        await asyncio.sleep(0.02)  # the link's life, say: it ends by itself
    finally:
        child.cancel()
        if use_reap:
            await reap(child)
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await child
    went_on.append(True)


async def _cancel_during_clean_up(use_reap: bool) -> list[bool]:
    went_on: list[bool] = []
    parent = asyncio.create_task(_clean_up_then_go_on(use_reap, went_on))
    await asyncio.sleep(0.04)
    parent.cancel()  # the owner cancels while the clean-up awaits the child (0.1 s)
    with contextlib.suppress(asyncio.CancelledError):
        await parent
    return went_on


@pytest.mark.asyncio
async def test_the_callers_cancellation_is_raised_again() -> None:
    assert await _cancel_during_clean_up(use_reap=True) == []


@pytest.mark.asyncio
async def test_suppress_swallows_it() -> None:
    """What reap prevents: with suppress, the cancelled task carries on past its clean-up."""
    assert await _cancel_during_clean_up(use_reap=False) == [True]


@pytest.mark.asyncio
async def test_the_childs_own_end_is_dropped() -> None:
    from node.reap import reap

    child = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    child.cancel()
    await reap(child)  # no error: its cancellation was expected

    async def fails() -> None:
        raise ConnectionError("peer gone")

    failing = asyncio.create_task(fails())
    await reap(failing, ConnectionError)
    with pytest.raises(ConnectionError):
        await reap(asyncio.create_task(fails()))
