"""Catch-up (node/sync.py): whom to ask and how a peer is demoted (finding F7), whose
fault a block that does not apply is (finding F4), when its writes are synced, and the
next batch asked for while one is applied."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from ledger.block import Block
from ledger.errors import CorruptionError
from ledger.storage import MemoryStore, WriteBatch, keys
from ledger.votes import CommitCertificate
from node import sync
from node.peers import Peer
from node.sync import REQUEST_TIMEOUT_S, Syncer
from node.wire import SyncRequest, SyncResponse, decode_message, encode_message
from tests.unit.node.chainkit import VALIDATOR_KEYS, Kit, certify, register_member_tx

OBSERVER = b"\x07" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def peer(name: str, key: bytes, height: int) -> Peer:
    return Peer(key=key, name=name, ws=None, dialed_by_us=True, height=height)  # type: ignore[arg-type]


def validator_peer(i: int, height: int) -> Peer:
    return peer(f"v{i}", VALIDATOR_KEYS[i].public_key, height)


class Harness:
    """A syncer over a kit's chain; the harness is its links (``linked`` are the peers,
    what it sends lands in ``sent``) and its host (``batches``, ``faults``)."""

    def __init__(self, peers: list[Peer], kit: Kit | None = None, seed: int = 1) -> None:
        self.kit = kit or Kit()
        self.clock = Clock()
        self.linked = peers
        self.sent: list[tuple[Peer, Any]] = []
        self.faults: list[tuple[int, str]] = []
        self.batches: list[int] = []
        self.syncer = Syncer(
            self.kit.executor, self, self, clock=self.clock, rng=random.Random(seed)
        )

    # --- SyncLinks ---

    @property
    def peers(self) -> dict[bytes, Peer]:
        return {p.key: p for p in self.linked}

    def send(self, peer: Peer, msg: SyncRequest) -> None:
        self.sent.append((peer, msg))

    async def deliver(self, peer: Peer, frame: bytes, timeout_s: float) -> bool:
        self.sent.append((peer, decode_message(frame, len(frame))))
        return True

    # --- SyncHost ---

    def synced(self, block: Block, cert: CommitCertificate) -> None:
        pass

    def sync_advanced(self, height: int) -> None:
        self.batches.append(height)

    def local_fault(self, height: int, message: str) -> None:
        self.faults.append((height, message))

    def asked(self) -> list[str]:
        return [p.name for p, m in self.sent if isinstance(m, SyncRequest)]


def source_chain(blocks: int) -> Kit:
    src = Kit()
    for i in range(blocks):
        src.commit([register_member_tx(i + 1, f"sync-member-{i}", ["viewer"])])
    return src


def response(src: Kit, first: int, last: int) -> SyncResponse:
    blocks = tuple(b for h in range(first, last + 1) if (b := src.chain.block(h)) is not None)
    return SyncResponse(blocks, src.chain.certificate(last))


# --- the target and the choice (F7) -------------------------------------------------------


def test_one_liar_does_not_set_the_target() -> None:
    liar = peer("observer", OBSERVER, 2**62)
    h = Harness([liar, validator_peer(1, 12), validator_peer(2, 12), validator_peer(3, 11)])
    assert h.syncer.target() == 12
    lying_validator = validator_peer(1, 2**62)
    h.linked = [lying_validator, validator_peer(2, 12), validator_peer(3, 11)]
    assert h.syncer.target() == 12  # f+1 = 2 validators must claim it
    h.syncer.behind(40)  # a signed message proves more
    assert h.syncer.target() == 40


def test_the_peer_asked_is_drawn_among_those_ahead() -> None:
    ahead = [validator_peer(i, 9) for i in (1, 2, 3)]
    h = Harness([*ahead, peer("behind", OBSERVER, 0)])
    seen = set()
    for _ in range(40):
        h.syncer._outstanding = None
        h.syncer.maybe_request()
        seen.add(h.sent[-1][0].name)
    assert seen == {"v1", "v2", "v3"}  # in turn, not always the highest; never one behind


def test_a_peer_that_does_not_answer_is_demoted_with_backoff() -> None:
    liar = peer("liar", OBSERVER, 2**62)
    honest = validator_peer(1, 5)
    h = Harness([liar, honest], seed=0)
    h.syncer.choose = lambda candidates: liar if liar in candidates else candidates[0]  # type: ignore[method-assign]
    h.syncer.maybe_request()
    assert h.asked() == ["liar"]
    h.clock.now += REQUEST_TIMEOUT_S / 2
    h.syncer.maybe_request()  # still waiting
    assert h.asked() == ["liar"]
    h.clock.now += REQUEST_TIMEOUT_S
    h.syncer.maybe_request()  # timed out: demoted, the other peer is asked
    assert h.asked() == ["liar", "v1"]
    assert h.syncer.failures(liar) == 1
    del h.syncer.choose  # back to the real choice: fewest failures first
    for _ in range(10):
        h.syncer._outstanding = None
        h.clock.now += 60
        h.syncer.maybe_request()
    assert h.asked()[2:] == ["v1"] * 10


def test_a_demoted_peer_is_asked_again_after_its_backoff_if_it_is_the_only_one() -> None:
    only = validator_peer(1, 5)
    h = Harness([only])
    h.syncer.maybe_request()
    h.clock.now += REQUEST_TIMEOUT_S + 0.1
    h.syncer.maybe_request()
    assert h.asked() == ["v1"]  # demoted: waits its backoff (2 s)
    h.clock.now += 2.1
    h.syncer.maybe_request()
    assert h.asked() == ["v1", "v1"]


def test_an_empty_answer_demotes_and_lowers_the_claim() -> None:
    liar = validator_peer(1, 2**62)
    h = Harness([liar])
    h.syncer.maybe_request()
    ok = asyncio.run(h.syncer.apply(liar, SyncResponse((), None)))
    assert ok  # not invalid, just useless
    assert h.syncer.failures(liar) == 1 and liar.height == 0


def test_a_good_batch_clears_the_record_and_applies() -> None:
    src = source_chain(3)
    p = validator_peer(1, 3)
    h = Harness([p])
    h.syncer._failures[p.key] = 3
    h.syncer.maybe_request()
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert h.kit.chain.head().height == 3 and h.syncer.failures(p) == 0
    assert h.batches == [1, 2, 3]  # consensus moves past each block as it is applied
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_apply_yields_to_the_event_loop_between_blocks() -> None:
    src = source_chain(4)
    p = validator_peer(1, 4)
    h = Harness([p])
    ticks: list[int] = []

    async def main() -> None:
        async def ticker() -> None:
            while True:
                ticks.append(h.kit.chain.head().height)
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await h.syncer.apply(p, response(src, 1, 4))
        task.cancel()

    asyncio.run(main())
    assert {1, 2, 3} <= set(ticks)  # the other task ran between the blocks


def test_a_block_without_a_valid_certificate_is_the_peers_fault() -> None:
    src = source_chain(2)
    p = validator_peer(1, 2)
    h = Harness([p])
    resp = response(src, 1, 2)
    bad_tip = certify(resp.blocks[1], signers=range(1))  # 1 of 4: not >2/3
    assert not asyncio.run(h.syncer.apply(p, SyncResponse(resp.blocks, bad_tip)))
    assert h.kit.chain.head().height == 1  # block 1 (certified by block 2) applied
    assert h.faults == [] and h.syncer.failed is None
    assert h.syncer.failures(p) == 1


def test_a_body_that_does_not_match_its_certified_header_is_the_peers_fault() -> None:
    src = source_chain(2)
    p = validator_peer(1, 2)
    h = Harness([p])
    resp = response(src, 1, 2)
    first = resp.blocks[0]
    other_txs = (register_member_tx(1, "someone-else", ["viewer"]),)
    forged = Block(first.header, other_txs, first.last_cert)  # same header, other txs
    assert not asyncio.run(h.syncer.apply(p, SyncResponse((forged,), resp.blocks[1].last_cert)))
    assert h.faults == [] and h.kit.chain.head().height == 0


def failing_validation(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> tuple[Harness, Peer, SyncResponse]:
    """A harness whose executor raises ``exc`` for every block, a peer, and 3 blocks from it."""
    src = source_chain(3)
    p = validator_peer(1, 3)
    h = Harness([p])

    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(h.kit.executor, "validate_block", fail)
    return h, p, response(src, 1, 3)


# --- a local fault (F4) -------------------------------------------------------------------


def test_a_corrupt_local_store_stops_the_node_and_does_not_blame_the_peer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = CorruptionError("corrupt record in data: Corruption: block checksum mismatch")
    h, p, resp = failing_validation(monkeypatch, corrupt)
    with caplog.at_level("ERROR", logger="cityledger.sync"):
        assert asyncio.run(h.syncer.apply(p, resp))  # not the peer's fault
    assert h.syncer.failures(p) == 0
    assert len(h.faults) == 1 and h.faults[0][0] == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "local store is damaged or diverged at height 1" in errors[0]
    assert "checksum mismatch" in errors[0] and "resync from peers" in errors[0]
    h.sent.clear()
    h.syncer.maybe_request()  # stopped: asks nobody any more
    assert h.sent == []


def test_a_bug_of_ours_is_not_reported_as_a_damaged_store(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ledger and storage errors are the store's fault: a programming error while a
    certified block is applied propagates, visible, and the node does not stop as if
    its store were damaged."""
    bug = AttributeError("'NoneType' object has no attribute 'state_root'")
    h, p, resp = failing_validation(monkeypatch, bug)
    with (
        caplog.at_level("ERROR", logger="cityledger.sync"),
        pytest.raises(AttributeError, match="state_root"),
    ):
        asyncio.run(h.syncer.apply(p, resp))
    assert h.faults == [] and h.syncer.failed is None
    assert not any("local store is damaged" in r.getMessage() for r in caplog.records)
    assert h.syncer.failures(p) == 0  # nor is it the peer's fault


def test_a_bug_reading_our_head_is_not_reported_as_a_damaged_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = source_chain(1)
    p = validator_peer(1, 1)
    h = Harness([p])

    def bug() -> None:
        raise TypeError("head() takes 1 positional argument but 2 were given")

    monkeypatch.setattr(h.kit.chain, "head", bug)
    with pytest.raises(TypeError, match="positional argument"):
        asyncio.run(h.syncer.apply(p, response(src, 1, 1)))
    assert h.faults == [] and h.syncer.failed is None


def test_a_head_record_that_does_not_read_back_is_a_local_fault() -> None:
    src = source_chain(3)
    p = validator_peer(1, 3)
    h = Harness([p])
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 1)))
    batch = WriteBatch()
    batch.put(keys.HEAD, b"\xc1 not a head record")
    h.kit.store.write(batch)
    assert asyncio.run(h.syncer.apply(p, response(src, 2, 3)))
    assert [height for height, _ in h.faults] == [2]
    assert "head record is corrupt" in h.faults[0][1]
    assert h.syncer.failures(p) == 0


def test_a_diverged_head_is_a_local_fault() -> None:
    """Our block 1 is not the chain's (a store rolled back or damaged): the certified
    block 2 does not extend it — our fault."""
    src = source_chain(2)
    p = validator_peer(1, 2)
    h = Harness([p])
    h.kit.commit([register_member_tx(1, "a-different-member", ["viewer"])])
    assert asyncio.run(h.syncer.apply(p, response(src, 2, 2)))
    assert [height for height, _ in h.faults] == [2]
    assert "does not extend our head" in h.faults[0][1]


# --- fewer fsyncs: one synced write per batch ---------------------------------------------


class SyncLog(MemoryStore):
    """A store that records each write: (operations in it, synced)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, bool]] = []

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self.log.append((len(batch), sync))
        super().write(batch, sync=sync)


def logged_harness(peers: list[Peer]) -> tuple[Harness, SyncLog]:
    store = SyncLog()
    h = Harness(peers, Kit(store=store))
    store.log.clear()  # the genesis write
    return h, store


def test_a_batch_is_synced_once_by_its_last_block() -> None:
    src = source_chain(4)
    p = validator_peer(1, 4)
    h, store = logged_harness([p])
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 4)))
    assert [synced for _, synced in store.log] == [False, False, False, True]
    assert all(n > 0 for n, _ in store.log)  # four blocks, no extra flush
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_consensus_commits_stay_synced() -> None:
    store = SyncLog()
    kit = Kit(store=store)
    kit.commit([register_member_tx(1, "synced-member", ["viewer"])])
    assert store.log[-1][1] is True


def test_a_batch_cut_short_by_a_bad_block_is_synced() -> None:
    src = source_chain(3)
    p = validator_peer(1, 3)
    h, store = logged_harness([p])
    resp = response(src, 1, 3)
    bad_tip = certify(resp.blocks[2], signers=range(1))
    assert not asyncio.run(h.syncer.apply(p, SyncResponse(resp.blocks, bad_tip)))
    assert h.kit.chain.head().height == 2
    assert store.log[-1] == (0, True)  # one synced empty write after blocks 1 and 2
    assert [synced for _, synced in store.log[:-1]] == [False, False]


def test_a_batch_cut_short_by_a_local_fault_is_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    src = source_chain(3)
    p = validator_peer(1, 3)
    h, store = logged_harness([p])
    validate = h.kit.executor.validate_block

    def fail_at_2(block: Block, now_ms: int | None, *, certified: bool = False) -> Any:
        if block.height == 2:
            raise CorruptionError("corrupt record")
        return validate(block, now_ms, certified=certified)

    monkeypatch.setattr(h.kit.executor, "validate_block", fail_at_2)
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert [height for height, _ in h.faults] == [2]
    assert store.log == [(store.log[0][0], False), (0, True)]


def test_a_batch_cut_short_by_the_node_stopping_is_synced() -> None:
    src = source_chain(4)
    p = validator_peer(1, 4)
    h, store = logged_harness([p])

    async def main() -> None:
        task = asyncio.create_task(h.syncer.apply(p, response(src, 1, 4)))
        while h.kit.chain.head().height < 2:
            await asyncio.sleep(0)
        task.cancel()  # as the node's TaskGroup does on shutdown
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert h.kit.chain.head().height == 2
    assert [synced for _, synced in store.log] == [False, False, True]
    assert store.log[-1] == (0, True)


# --- pipelining: the next batch is asked for while this one is applied ------------------


def test_the_next_batch_is_asked_for_before_this_one_is_applied() -> None:
    src = source_chain(6)
    p = validator_peer(1, 6)
    h = Harness([p])
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
    src = source_chain(4)
    p = validator_peer(1, 4)
    h = Harness([p])
    h.syncer.maybe_request()
    h.sent.clear()
    other = validator_peer(2, 4)
    h.linked.append(other)
    assert asyncio.run(h.syncer.apply(other, response(src, 1, 2)))  # p's answer is awaited
    assert h.sent == []


def test_one_request_at_most_beyond_the_batch_applied_and_its_time_starts_after() -> None:
    """While a batch is applied, the heartbeat neither asks again nor times out the
    request sent ahead: its answer cannot be handled before the batch ends."""
    src = source_chain(4)
    slow = validator_peer(1, 9)
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
    bad, good = validator_peer(1, 6), validator_peer(2, 6)
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
    p, liar = validator_peer(1, 3), validator_peer(2, 2**62)
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
    p, other = validator_peer(1, 9), validator_peer(2, 9)
    h = Harness([p, other])
    h.syncer.maybe_request()
    h.sent.clear()
    whole = response(src, 1, 9)
    gapped = SyncResponse((*whole.blocks[:2], whole.blocks[8]), whole.tip_cert)
    assert not asyncio.run(h.syncer.apply(p, gapped))  # block 2's certificate is for 8
    assert h.kit.chain.head().height == 1
    assert [m.from_height for _, m in h.sent] == [2]  # asked again, never from 10


# --- serving ------------------------------------------------------------------------------


def test_serve_measures_blocks_by_their_own_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    src = source_chain(4)
    h = Harness([], src)
    asker = validator_peer(1, 0)
    sizes = [len(b.encode()) for b in response(src, 1, 4).blocks]
    monkeypatch.setattr(sync, "MAX_RESPONSE_BYTES", sum(sizes[:2]))

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
    asker, other = validator_peer(1, 0), validator_peer(2, 0)
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
    p = validator_peer(1, 5)
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
