"""Pending transactions go to the peers again when the network stalls with work here
(node/tx_resend.py, ``Gossip.resend_if_stalled``): a batch a peer missed must not leave
its transactions waiting for idle heartbeats."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.tx_resend import StalledResend
from node.wire import TxBatch, decode_message
from tests.unit.node.chainkit import fake_peer, make_node, sent
from tests.unit.node.chainkit import register_member_tx as member


def test_nothing_is_due_before_the_stall_has_lasted() -> None:
    resend = StalledResend(first_s=2.0, max_interval_s=60.0)
    assert not resend.due(5, True, 100.0)  # the stall begins
    assert not resend.due(5, True, 101.9)
    assert resend.due(5, True, 102.0)


def test_the_intervals_double_up_to_the_maximum_while_the_head_stays() -> None:
    resend = StalledResend(first_s=2.0, max_interval_s=10.0)
    resend.due(5, True, 0.0)
    times = [t / 10 for t in range(0, 1000) if resend.due(5, True, t / 10)]
    assert times[:4] == [2.0, 6.0, 14.0, 24.0]  # after 2, 4, 8, then 10 s at most
    assert len(times) > 8
    assert all(b - a == pytest.approx(10.0) for a, b in pairwise(times[3:]))


def test_a_new_head_or_no_work_starts_the_count_again() -> None:
    resend = StalledResend(first_s=2.0, max_interval_s=60.0)
    resend.due(5, True, 0.0)
    assert resend.due(5, True, 2.0)
    assert not resend.due(6, True, 2.5)  # a block was committed
    assert not resend.due(6, True, 4.4)
    assert resend.due(6, True, 4.5)
    assert not resend.due(6, False, 30.0)  # the work went
    assert not resend.due(6, True, 31.0)  # fresh work was gossiped just now
    assert resend.due(6, True, 33.0)


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.floats(0, 5)), max_size=60))
def test_never_twice_within_the_first_interval_and_never_without_work(
    steps: list[tuple[int, bool, float]],
) -> None:
    resend = StalledResend(first_s=2.0, max_interval_s=60.0)
    now, height, last = 0.0, 0, None
    for bump, has_work, dt in steps:
        now += dt
        height += bump
        if resend.due(height, has_work, now):
            assert has_work
            assert last is None or now - last >= 2.0
            last = now


async def test_a_stalled_node_sends_what_it_would_propose_to_every_peer_again() -> None:
    node = make_node()
    node.consensus_started = True
    peers = [fake_peer(i) for i in (1, 2, 3)]
    node.peers.peers.update({p.key: p for p in peers})
    txs = [member(n, f"resend-member-{n}", ["trader"]) for n in range(3)]
    assert await node.admission.admit(txs, None) == [None, None, None]
    start = time.monotonic()
    node.gossip.resend_if_stalled(start)
    node.gossip.resend_if_stalled(start + 1.0)
    assert [sent(p) for p in peers] == [[], [], []]  # not yet stalled
    node.gossip.resend_if_stalled(start + 2.0)
    for peer in peers:
        frames = sent(peer)
        assert len(frames) == 1
        batch = decode_message(frames[0], len(frames[0]))
        assert isinstance(batch, TxBatch)
        assert [tx.hash for tx in batch.txs] == [tx.hash for tx in txs]
    node.gossip.resend_if_stalled(start + 3.0)
    assert [sent(p) for p in peers] == [[], [], []]  # next after 4 s more
    assert node.gossip.stalled.resends == 1


async def test_a_node_with_nothing_ready_or_still_catching_up_sends_nothing() -> None:
    node = make_node()
    peers = [fake_peer(i) for i in (1, 2, 3)]
    node.peers.peers.update({p.key: p for p in peers})
    gapped = member(1, "resend-gapped", ["trader"])  # nonce 0 never came
    assert await node.admission.admit([gapped], None) == [None]
    start = time.monotonic()
    node.consensus_started = True
    for dt in (0.0, 5.0, 60.0):
        node.gossip.resend_if_stalled(start + dt)
    first = member(0, "resend-first", ["trader"])
    assert await node.admission.admit([first], None) == [None]
    node.consensus_started = False  # catching up: its head moves by sync
    for dt in (61.0, 70.0, 200.0):
        node.gossip.resend_if_stalled(start + dt)
    assert [sent(p) for p in peers] == [[], [], []]


async def test_nothing_is_sent_again_while_a_proposal_for_the_round_is_here() -> None:
    """A block that takes long is a busy network, not an idle proposer."""
    node = make_node()
    node.consensus_started = True
    peers = [fake_peer(i) for i in (1, 2, 3)]
    node.peers.peers.update({p.key: p for p in peers})
    assert await node.admission.admit([member(0, "resend-busy", ["trader"])], None) == [None]
    node.driver.start()
    state = node.core.round_state(node.core.round)
    assert state is not None and state.proposal is None
    state.proposal = object()  # type: ignore[assignment]  # as if one had come
    start = time.monotonic()
    for dt in (0.0, 2.0, 5.0, 30.0):
        node.gossip.resend_if_stalled(start + dt)
    assert [sent(p) for p in peers] == [[], [], []]
    state.proposal = None
    node.gossip.resend_if_stalled(start + 31.0)
    node.gossip.resend_if_stalled(start + 33.0)
    assert all(len(sent(p)) == 1 for p in peers)
    node.driver._cancel_timers()
