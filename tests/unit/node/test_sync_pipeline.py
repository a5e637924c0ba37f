"""Catch-up (node/sync.py) pipelined: the next batch is asked for while this one is
applied, at most one request ahead."""

from __future__ import annotations

import asyncio
from typing import Any

from node.peers import Peer
from node.sync import REQUEST_TIMEOUT_S
from node.wire import SyncResponse
from tests.unit.node.chainkit import Kit, certify, fake_peer
from tests.unit.node.synckit import Harness, one_peer_ahead, response, source_chain


def test_the_next_batch_is_asked_for_before_this_one_is_applied() -> None:
    src, p, h = one_peer_ahead(6)
    asks: list[tuple[int, int]] = []  # (from height, our head when asked)

    def send(to: Peer, msg: Any) -> None:
        asks.append((msg.from_height, h.kit.chain.head().height))

    h.send = send  # type: ignore[method-assign]
    h.syncer.maybe_request()
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert asks == [(1, 0), (4, 0)]  # block 1 was not applied yet when 4.. was asked for
    assert asyncio.run(h.syncer.apply(p, response(src, 4, 6)))
    assert asks == [(1, 0), (4, 0)]  # nobody claims 7: nothing more to ask
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash
    assert h.batches == [1, 2, 3, 4, 5, 6] and h.syncer.failures(p) == 0


def test_an_unasked_batch_does_not_ask_ahead() -> None:
    src, _, h = one_peer_ahead(4)
    h.syncer.maybe_request()
    h.sent.clear()
    other = fake_peer(2, 4)
    h.linked.append(other)
    assert asyncio.run(h.syncer.apply(other, response(src, 1, 2)))  # p's answer is awaited
    assert h.sent == []


def test_one_request_at_most_beyond_the_batch_applied_and_its_time_starts_after() -> None:
    """While a batch is applied, the heartbeat neither asks again nor times out the
    request sent ahead: its answer cannot be handled before the batch ends."""
    src = source_chain(4)
    slow = fake_peer(1, 9)
    h = Harness([slow])
    h.syncer.maybe_request()

    async def main() -> None:
        async def heartbeat() -> None:
            while True:
                h.clock.now += REQUEST_TIMEOUT_S  # applying takes long
                h.syncer.maybe_request()
                await asyncio.sleep(0)

        task = asyncio.create_task(heartbeat())
        await h.syncer.apply(slow, response(src, 1, 4))
        task.cancel()

    asyncio.run(main())
    assert h.kit.chain.head().height == 4
    assert [m.from_height for _, m in h.sent] == [1, 5]
    h.clock.now += REQUEST_TIMEOUT_S - 0.5
    h.syncer.maybe_request()  # within its time, counted from the end of the batch
    assert h.syncer.failures(slow) == 0 and len(h.sent) == 2
    h.clock.now += 1.0
    h.syncer.maybe_request()  # now it is late: the usual demotion
    assert h.syncer.failures(slow) == 1


def refused_first_batch(ahead_from_bad: bool) -> tuple[Harness, Kit, Peer, Peer]:
    """Blocks 1..6 at a bad peer v1 and a good peer v2: 1.. is asked of v1, the batch
    ahead (4..) of v1 or v2, the next request of v2. v1 answers 1..3 with a tip certificate
    of one signature, which is refused. Returns (harness, source chain, v1, v2)."""
    src = source_chain(6)
    bad, good = fake_peer(1, 6), fake_peer(2, 6)
    h = Harness([bad, good])
    order = iter([bad, bad if ahead_from_bad else good, good])
    h.syncer.choose = lambda candidates: next(order)  # type: ignore[method-assign]
    h.syncer.maybe_request()
    resp = response(src, 1, 3)
    bad_tip = certify(resp.blocks[2], signers=range(1))
    assert not asyncio.run(h.syncer.apply(bad, SyncResponse(resp.blocks, bad_tip)))
    return h, src, bad, good


def test_an_answer_above_our_next_height_after_a_short_batch_is_not_blamed() -> None:
    """The batch asked ahead (4..6) starts above our next height because the batch
    before it stopped at a bad block: dropped without blame, and 3.. is asked again."""
    h, src, bad, good = refused_first_batch(ahead_from_bad=False)
    assert h.kit.chain.head().height == 2 and h.syncer.failures(bad) == 1
    assert [(p.name, m.from_height) for p, m in h.sent] == [("v1", 1), ("v2", 4)]
    assert asyncio.run(h.syncer.apply(good, response(src, 4, 6)))
    assert h.kit.chain.head().height == 2 and h.syncer.failures(good) == 0
    assert [(p.name, m.from_height) for p, m in h.sent][2:] == [("v2", 3)]
    assert asyncio.run(h.syncer.apply(good, response(src, 3, 6)))
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_a_batch_asked_ahead_from_a_bad_peer_is_not_awaited() -> None:
    h, _, _, _ = refused_first_batch(ahead_from_bad=True)
    assert [(p.name, m.from_height) for p, m in h.sent] == [("v1", 1), ("v1", 4), ("v2", 3)]


def test_an_empty_answer_to_a_request_sent_ahead_demotes() -> None:
    src = source_chain(3)
    p, liar = fake_peer(1, 3), fake_peer(2, 2**62)
    h = Harness([p, liar])
    order = iter([p, liar])
    h.syncer.choose = lambda candidates: next(order)  # type: ignore[method-assign]
    h.syncer.maybe_request()
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert [(q.name, m.from_height) for q, m in h.sent] == [("v1", 1), ("v2", 4)]
    assert asyncio.run(h.syncer.apply(liar, SyncResponse((), None)))
    assert h.syncer.failures(liar) == 1 and liar.height == 3


def test_an_answer_with_a_gap_in_its_heights_does_not_ask_ahead() -> None:
    """Only an answer with as many heights as blocks, going on from our head, asks ahead:
    a made-up last height cannot send an honest peer a request it must answer empty."""
    src = source_chain(9)
    p, other = fake_peer(1, 9), fake_peer(2, 9)
    h = Harness([p, other])
    h.syncer.maybe_request()
    h.sent.clear()
    whole = response(src, 1, 9)
    gapped = SyncResponse((*whole.blocks[:2], whole.blocks[8]), whole.tip_cert)
    assert not asyncio.run(h.syncer.apply(p, gapped))  # block 2's certificate is for 8
    assert h.kit.chain.head().height == 1
    assert [m.from_height for _, m in h.sent] == [2]  # asked again, never from 10
