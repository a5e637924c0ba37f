"""A quiet heartbeat in the node's log: one line a minute with what an operator checks
first (height, how long since the last commit, links to the other validators, mempool,
sync), so a log alone shows when a node stalled or lost its peers.

    heartbeat: height 1234, last commit 0.8 s ago, round 0, peers 3, every validator
    linked, mempool 12, in sync
    heartbeat: height 1240, last commit 41.3 s ago, round 5, peers 1, no link to
    busan-2, busan-3, mempool 210, in sync
    heartbeat: height 1250, last commit 45.2 s ago, idle (waiting for transactions),
    peers 3, every validator linked, mempool 0, in sync

An idle network commits only a heartbeat block a minute ([consensus]
empty_block_interval_ms), so "idle" says why the last commit is that old.

It reads :meth:`node.handle.NodeHandle.status` (what ``GET /v1/status`` shows), so it
needs nothing of the node's insides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ledger.encoding import Value

HEARTBEAT_INTERVAL_S = 60.0
log = logging.getLogger("cityledger.node")


class StatusSource(Protocol):
    def status(self) -> dict[str, Value]: ...


def heartbeat_line(status: dict[str, Value], now_ms: int) -> str:
    """The heartbeat for one ``status`` at wall-clock ``now_ms``."""
    peers = status.get("peers")
    block_time = status.get("block_time_ms")
    age = (now_ms - block_time) / 1000 if isinstance(block_time, int) else None
    consensus = status.get("consensus")
    sync = status.get("sync")
    missing = status.get("missing")
    unlinked = missing.get("validators") if isinstance(missing, dict) else None
    names = [str(v.get("name")) for v in unlinked or [] if isinstance(v, dict)]
    waiting = isinstance(consensus, dict) and consensus.get("step") == "wait"
    parts = [
        f"height {status.get('height')}",
        "last commit never" if age is None else f"last commit {age:.1f} s ago",
        "idle (waiting for transactions)"
        if waiting
        else f"round {consensus.get('round') if isinstance(consensus, dict) else '?'}",
        f"peers {len(peers) if isinstance(peers, list) else '?'}",
        f"no link to {', '.join(names)}" if names else "every validator linked",
        f"mempool {status.get('mempool')}",
        (
            f"catching up to {sync.get('target_height')}"
            if isinstance(sync, dict) and sync.get("syncing")
            else "in sync"
        ),
    ]
    return "heartbeat: " + ", ".join(parts)


async def log_heartbeats(
    node: StatusSource, clock: Callable[[], float], interval_s: float = HEARTBEAT_INTERVAL_S
) -> None:
    """Log :func:`heartbeat_line` every ``interval_s`` (``clock``: wall-clock seconds)."""
    while True:
        await asyncio.sleep(interval_s)
        log.info(heartbeat_line(node.status(), int(clock() * 1000)))
