"""The driver's side of an idle height: the heartbeat counts from the head block's time,
and only a ready transaction (or evidence) is something to commit."""

from __future__ import annotations

from node.consensus.effects import ScheduleTimeout
from node.consensus.types import Step
from tests.unit.node.chainkit import make_node

INTERVAL = 60_000


def test_the_heartbeat_counts_from_the_head_blocks_time() -> None:
    node = make_node()
    driver, head_ms = node.driver, node.chain.head().time_ms
    wait = ScheduleTimeout(1, 0, Step.WAIT, INTERVAL)
    for since_ms, delay_ms in ((0, INTERVAL), (45_000, 15_000), (3_600_000, 0), (-5_000, INTERVAL)):
        driver.clock = lambda s=since_ms: (head_ms + s) / 1000
        assert driver._delay_ms(wait) == delay_ms, since_ms
    propose = ScheduleTimeout(1, 0, Step.PROPOSE, 3000)
    assert driver._delay_ms(propose) == 3000  # round timeouts are as asked


def test_an_empty_mempool_is_nothing_to_commit() -> None:
    node = make_node()
    assert not node.driver._has_work(1)
