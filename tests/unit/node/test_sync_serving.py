"""Catch-up (node/sync.py, node/sync_serve.py), the serving side: answers measured, encoded
and built one block at a time, one request per peer at a time, responses only from peers
asked."""

from __future__ import annotations

import asyncio

import pytest

from node import sync_serve
from node.peers import Peer
from node.sync import REQUEST_TIMEOUT_S
from node.wire import SyncRequest, SyncResponse, decode_message, encode_message
from tests.unit.node.chainkit import fake_peer
from tests.unit.node.synckit import Harness, response, source_chain


def test_serve_measures_blocks_by_their_own_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    src = source_chain(4)
    h = Harness([], src)
    asker = fake_peer(1, 0)
    sizes = [len(b.encode()) for b in response(src, 1, 4).blocks]
    monkeypatch.setattr(sync_serve, "MAX_RESPONSE_BYTES", sum(sizes[:2]))

    async def main() -> None:
        assert h.syncer.serve(asker, SyncRequest(1, 10))
        await asyncio.gather(*h.syncer._serving)

    asyncio.run(main())
    ((_, resp),) = h.sent
    assert [b.height for b in resp.blocks] == [1, 2]
    assert resp.tip_cert == src.chain.certificate(2)


@pytest.mark.parametrize(("first", "count"), [(1, 5), (3, 2), (1, 1), (6, 3), (2, 200)])
def test_the_response_frame_is_the_canonical_encoding(first: int, count: int) -> None:
    """Joined from the stored bytes, it is exactly what encoding the message gives."""
    src = source_chain(5)
    h = Harness([], src)
    frame = asyncio.run(h.syncer.response_frame(SyncRequest(first, count)))
    assert frame is not None
    last = min(5, first + count - 1)
    blocks = tuple(b for n in range(first, last + 1) if (b := src.chain.block(n)) is not None)
    expected = SyncResponse(blocks, src.chain.certificate(last) if blocks else None)
    assert frame == encode_message(expected)
    assert decode_message(frame, len(frame)) == expected


def test_an_answer_is_built_one_block_at_a_time_and_dropped_when_the_link_closes() -> None:
    src = source_chain(6)
    h = Harness([], src)
    reads: list[int] = []
    block_bytes = src.chain.block_bytes

    def counting(height: int) -> bytes | None:
        reads.append(height)
        return block_bytes(height)

    src.chain.block_bytes = counting  # type: ignore[method-assign]
    alive = iter([True, True, False])
    frame = asyncio.run(h.syncer.response_frame(SyncRequest(1, 10), lambda: next(alive)))
    assert frame is None and reads == [1, 2, 3]  # stopped at the first look after it closed


def test_one_request_per_peer_is_answered_at_a_time() -> None:
    src = source_chain(3)
    h = Harness([], src)
    asker, other = fake_peer(1, 0), fake_peer(2, 0)
    release = asyncio.Event()
    delivered: list[tuple[Peer, bytes]] = []

    async def deliver(peer: Peer, frame: bytes, timeout_s: float) -> bool:
        await release.wait()  # the peer's send queue is full for now
        delivered.append((peer, frame))
        return True

    h.deliver = deliver  # type: ignore[method-assign]

    async def main() -> None:
        assert h.syncer.serve(asker, SyncRequest(1, 10))
        await asyncio.sleep(0.01)
        assert not h.syncer.serve(asker, SyncRequest(2, 10))  # still answering the first
        assert h.syncer.serve(other, SyncRequest(1, 10))  # another peer is another matter
        assert h.syncer.refused_requests == 1
        release.set()
        await asyncio.gather(*h.syncer._serving)
        assert h.syncer.serve(asker, SyncRequest(2, 10))  # answered: the next is welcome
        await asyncio.gather(*h.syncer._serving)

    asyncio.run(main())
    assert [p.name for p, _ in delivered] == ["v1", "v2", "v1"]


def test_a_response_is_taken_only_from_a_peer_that_was_asked() -> None:
    p = fake_peer(1, 5)
    h = Harness([p])
    assert not h.syncer.solicited(p)  # nobody asked it
    h.syncer.behind(5, backed=False)
    assert h.asked() == ["v1"]
    assert h.syncer.solicited(p)  # the answer
    assert not h.syncer.solicited(p)  # a second one is not
    assert h.syncer.unsolicited == 2
    h.clock.now += REQUEST_TIMEOUT_S + 1  # timed out: asked again (after the backoff)
    h.syncer.maybe_request()
    h.clock.now += 10
    h.syncer.maybe_request()
    assert h.asked() == ["v1", "v1"]
    assert p.sync_owed == 1
