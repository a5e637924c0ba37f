"""The latency budget: a node admits from clients only what it commits within
``budget_s`` at its measured commit rate (node/latency_budget.py), and a client's batch
is cut in order, so no sender's later nonce is taken without its earlier one."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from node.admission import Admission
from node.api.metrics import Metrics
from node.latency_budget import MAX_RETRY_AFTER_S, UNBOUNDED, LatencyBudget
from node.sigcache import SignatureWorker
from tests.unit.node.api.conftest import TestNode, build_standard_chain, milestone


def test_capacity_is_budget_times_the_commit_rate_with_a_floor() -> None:
    b = LatencyBudget(2.0, floor_txs=100, window_s=10.0)
    assert b.rate(0.0) == 0.0 and b.capacity(0.0) == 100  # nothing measured: the floor
    for second in range(10):
        b.committed(1000, float(second))
    assert 1000 <= b.rate(9.0) <= 1112  # 10,000 in 9 s
    assert b.capacity(9.0) == int(b.rate(9.0) * 2.0)
    assert b.room(b.capacity(9.0), 9.0) == 0 and b.room(0, 9.0) == b.capacity(9.0)
    # a quiet minute later the old blocks are forgotten: back to the floor
    assert b.rate(70.0) == 0.0 and b.capacity(70.0) == 100


def test_retry_after_is_the_time_the_backlog_needs() -> None:
    b = LatencyBudget(2.0, floor_txs=10)
    for second in range(5):
        b.committed(500, float(second))
    rate = b.rate(4.0)  # 2,500 in 4 s
    cap = b.capacity(4.0)
    assert b.retry_after_s(cap + int(rate * 3), 4.0) in (3, 4)
    assert b.retry_after_s(cap, 4.0) == 1  # just full: try again in a second
    assert b.retry_after_s(10**9, 4.0) == MAX_RETRY_AFTER_S
    assert LatencyBudget(2.0, 10).retry_after_s(50, 0.0) == 1  # no rate known yet


def test_off_means_no_limit() -> None:
    b = LatencyBudget(0.0, floor_txs=0)
    b.committed(10, 0.0)
    assert not b.enabled and b.room(10**9, 1.0) == UNBOUNDED


@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 5000)), max_size=60))
def test_room_never_negative_and_capacity_at_least_the_floor(
    blocks: list[tuple[float, int]],
) -> None:
    b = LatencyBudget(1.5, floor_txs=250, window_s=8.0)
    now = 0.0
    for gap, txs in blocks:
        now += gap
        b.committed(txs, now)
        assert b.capacity(now) >= 250
        assert b.room(10**6, now) == 0 and b.room(0, now) == b.capacity(now)
        assert 1 <= b.retry_after_s(10**6, now) <= MAX_RETRY_AFTER_S


def admission(node: TestNode) -> Admission:
    worker = SignatureWorker(node.sigs, node.genesis.chain_id, processes=0)
    return Admission(node.mempool, worker, Metrics(), lambda: None)


async def test_a_client_batch_is_cut_in_order_at_the_budget() -> None:
    node = TestNode()
    build_standard_chain(node)
    node.mempool.budget = LatencyBudget(2.0, floor_txs=3)
    txs = [milestone(node, place) for place in ("NLRTM", "NLAMS", "BEANR", "DEHAM", "FRLEH")]
    results = await admission(node).admit(txs, [], client=True)
    assert [r is None for r in results] == [True, True, True, False, False]
    assert {r.code for r in results if r is not None} == {"overloaded"}
    assert all(r.http_status == 429 for r in results if r is not None)
    assert [tx.hash in node.mempool for tx in txs] == [True, True, True, False, False]
    assert node.mempool.ready == 3 and node.mempool.gapped == 0  # no nonce left behind a gap
    # full: the next one is refused whole, and the same transaction admitted once room is made
    again = await admission(node).admit(txs[3:4], [], client=True)
    assert again[0] is not None and again[0].code == "overloaded"
    node.commit(list(txs[:3]))
    assert await admission(node).admit(txs[3:], [], client=True) == [None, None]


async def test_a_peers_batch_is_not_cut_again() -> None:
    node = TestNode()
    build_standard_chain(node)
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1)
    txs = [milestone(node, place) for place in ("NLRTM", "NLAMS", "BEANR")]
    assert await admission(node).admit(txs, None) == [None, None, None]
    assert node.mempool.overloaded(time.monotonic()) is not None
