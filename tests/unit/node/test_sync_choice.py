"""Catch-up (node/sync.py): whom to ask for blocks, how a peer that does not answer
or lies is demoted (finding F7), and that a block that does not check out is the
peer's fault."""

from __future__ import annotations

import asyncio

from ledger.block import Block
from node.sync import REQUEST_TIMEOUT_S
from node.wire import SyncResponse
from tests.unit.node.chainkit import certify, fake_peer, register_member_tx
from tests.unit.node.synckit import OBSERVER, Harness, one_peer_ahead, peer, response


def test_one_liar_does_not_set_the_target() -> None:
    liar = peer("observer", OBSERVER, 2**62)
    h = Harness([liar, fake_peer(1, 12), fake_peer(2, 12), fake_peer(3, 11)])
    assert h.syncer.target() == 12
    lying_validator = fake_peer(1, 2**62)
    h.linked = [lying_validator, fake_peer(2, 12), fake_peer(3, 11)]
    assert h.syncer.target() == 12  # f+1 = 2 validators must claim it
    h.syncer.behind(40)  # a signed message proves more
    assert h.syncer.target() == 40


def test_the_peer_asked_is_drawn_among_those_ahead() -> None:
    ahead = [fake_peer(i, 9) for i in (1, 2, 3)]
    h = Harness([*ahead, peer("behind", OBSERVER, 0)])
    seen = set()
    for _ in range(40):
        h.syncer._outstanding = None
        h.syncer.maybe_request()
        seen.add(h.sent[-1][0].name)
    assert seen == {"v1", "v2", "v3"}  # in turn, not always the highest; never one behind


def test_a_peer_that_does_not_answer_is_demoted_with_backoff() -> None:
    liar = peer("liar", OBSERVER, 2**62)
    honest = fake_peer(1, 5)
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
    only = fake_peer(1, 5)
    h = Harness([only])
    h.syncer.maybe_request()
    h.clock.now += REQUEST_TIMEOUT_S + 0.1
    h.syncer.maybe_request()
    assert h.asked() == ["v1"]  # demoted: waits its backoff (2 s)
    h.clock.now += 2.1
    h.syncer.maybe_request()
    assert h.asked() == ["v1", "v1"]


def test_an_empty_answer_demotes_and_lowers_the_claim() -> None:
    liar = fake_peer(1, 2**62)
    h = Harness([liar])
    h.syncer.maybe_request()
    ok = asyncio.run(h.syncer.apply(liar, SyncResponse((), None)))
    assert ok  # not invalid, just useless
    assert h.syncer.failures(liar) == 1 and liar.height == 0


def test_a_good_batch_clears_the_record_and_applies() -> None:
    src, p, h = one_peer_ahead(3)
    h.syncer._failures[p.key] = 3
    h.syncer.maybe_request()
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert h.kit.chain.head().height == 3 and h.syncer.failures(p) == 0
    assert h.batches == [1, 2, 3]  # consensus moves past each block as it is applied
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_apply_yields_to_the_event_loop_between_blocks() -> None:
    src, p, h = one_peer_ahead(4)
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
    src, p, h = one_peer_ahead(2)
    resp = response(src, 1, 2)
    bad_tip = certify(resp.blocks[1], signers=range(1))  # 1 of 4: not >2/3
    assert not asyncio.run(h.syncer.apply(p, SyncResponse(resp.blocks, bad_tip)))
    assert h.kit.chain.head().height == 1  # block 1 (certified by block 2) applied
    assert h.faults == [] and h.syncer.failed is None
    assert h.syncer.failures(p) == 1


def test_a_body_that_does_not_match_its_certified_header_is_the_peers_fault() -> None:
    src, p, h = one_peer_ahead(2)
    resp = response(src, 1, 2)
    first = resp.blocks[0]
    other_txs = (register_member_tx(1, "someone-else", ["viewer"]),)
    forged = Block(first.header, other_txs, first.last_cert)  # same header, other txs
    assert not asyncio.run(h.syncer.apply(p, SyncResponse((forged,), resp.blocks[1].last_cert)))
    assert h.faults == [] and h.kit.chain.head().height == 0
