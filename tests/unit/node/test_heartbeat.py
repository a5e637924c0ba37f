"""The heartbeat log line: what an operator checks first, from the node's status."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ledger.encoding import Value
from node.heartbeat import heartbeat_line, log_heartbeats

NOW_MS = 1_800_000_000_000


def status(**changes: Value) -> dict[str, Value]:
    base: dict[str, Value] = {
        "height": 1234,
        "block_time_ms": NOW_MS - 800,
        "consensus": {"height": 1235, "round": 0, "step": "propose"},
        "peers": [
            {"name": f"busan-{i}", "key": bytes([i]) * 32, "height": 1234} for i in (1, 2, 3)
        ],
        "missing": {"validators": [], "dial_failures": []},
        "mempool": 12,
        "sync": {"syncing": False, "target_height": 1234},
    }
    base.update(changes)
    return base


def test_a_healthy_node() -> None:
    assert heartbeat_line(status(), NOW_MS) == (
        "heartbeat: height 1234, last commit 0.8 s ago, round 0, peers 3, "
        "every validator linked, mempool 12, in sync"
    )


def test_a_stalled_node_that_lost_two_validators() -> None:
    line = heartbeat_line(
        status(
            block_time_ms=NOW_MS - 41_300,
            consensus={"height": 1235, "round": 5, "step": "prevote"},
            peers=[{"name": "busan-1", "key": b"\x01" * 32, "height": 1234}],
            missing={
                "validators": [
                    {"name": "busan-2", "key": b"\x02" * 32, "since_ms": NOW_MS - 50_000},
                    {"name": "busan-3", "key": b"\x03" * 32, "since_ms": NOW_MS - 45_000},
                ],
                "dial_failures": [],
            },
            sync={"syncing": True, "target_height": 1300},
        ),
        NOW_MS,
    )
    assert line == (
        "heartbeat: height 1234, last commit 41.3 s ago, round 5, peers 1, "
        "no link to busan-2, busan-3, mempool 12, catching up to 1300"
    )


def test_an_idle_node_says_why_its_last_commit_is_old() -> None:
    waiting = {"height": 1235, "round": 0, "step": "wait"}
    line = heartbeat_line(status(block_time_ms=NOW_MS - 45_200, consensus=waiting), NOW_MS)
    assert line.startswith(
        "heartbeat: height 1234, last commit 45.2 s ago, idle (waiting for transactions), peers 3"
    )


async def test_the_loop_logs_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    class Source:
        def status(self) -> dict[str, Value]:
            return status()

    caplog.set_level(logging.INFO, logger="cityledger.node")

    def lines() -> list[str]:
        return [m for r in caplog.records if (m := r.getMessage()).startswith("heartbeat:")]

    task = asyncio.create_task(log_heartbeats(Source(), lambda: NOW_MS / 1000, interval_s=0.01))
    for _ in range(500):  # bounded: at most ~5 s on a loaded machine
        if len(lines()) >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert len(lines()) >= 3 and set(lines()) == {heartbeat_line(status(), NOW_MS)}
