"""Bounded work per peer, through the node (node/runtime.py, node/driver.py): sync
requests answered one at a time per peer, off the read loop; unsolicited sync responses
refused; forged or refused consensus messages take no room from real ones, and one
refused for lack of room is neither marked seen nor relayed."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ledger.block import Block
from ledger.votes import Proposal, Vote, VoteType
from node.consensus import effects as fx
from node.consensus.types import Limits
from node.gossip import SEEN_FOR_S
from node.peers import MINOR, SEVERE, Peer
from node.runtime import Node
from node.wire import (
    ProposalMsg,
    SyncRequest,
    SyncResponse,
    VoteMsg,
    decode_message,
    encode_message,
)
from tests.unit.node.chainkit import (
    CHAIN,
    GENESIS,
    VALIDATOR_KEYS,
    Kit,
    certify,
    fake_peer,
    make_node,
    proposer_index,
    sent,
)
from tests.unit.node.chainkit import register_member_tx as member

PREVOTE = VoteType.PREVOTE


def record_penalties(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, bool]]:
    blamed: list[tuple[str, int, bool]] = []

    def penalise(peer: Peer, why: str, points: int = SEVERE, *, close: bool = True) -> None:
        blamed.append((peer.name, points, close))

    monkeypatch.setattr(node.peers, "penalise", penalise)
    return blamed


def chain_of(blocks: int) -> Kit:
    src = Kit(genesis=GENESIS)
    for i in range(blocks):
        src.commit([member(i + 1, f"bounded-member-{i}", ["viewer"])])
    return src


async def settle(node: Node) -> None:
    """Let the tasks that answer sync requests finish."""
    while serving := getattr(node.syncer, "_serving", ()):
        await asyncio.gather(*serving, return_exceptions=True)


# --- sync amplification --------------------------------------------------------------------


async def test_two_sync_requests_in_flight_from_one_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second request arrives while the first is being answered: it is refused, and
    counted against the peer (a minor offence: the link stays)."""
    node = make_node(store=chain_of(6).store)
    blamed = record_penalties(node, monkeypatch)
    asker = fake_peer(1)
    await node.gossip.on_message(asker, SyncRequest(1, 10))
    await node.gossip.on_message(asker, SyncRequest(1, 10))
    await settle(node)
    frames = sent(asker)
    assert len(frames) == 1  # one answer, one response in memory
    answer = decode_message(frames[0], len(frames[0]))
    assert isinstance(answer, SyncResponse) and [b.height for b in answer.blocks] == list(
        range(1, 7)
    )
    assert blamed == [("v1", MINOR, False)]
    assert node.syncer.refused_requests == 1
    await node.gossip.on_message(asker, SyncRequest(3, 10))  # answered: the next one is welcome
    await settle(node)
    assert len(sent(asker)) == 1 and len(blamed) == 1


async def test_a_sync_request_is_answered_off_the_read_loop() -> None:
    """Handling the 28-byte request builds nothing; the answer is built in a task that
    gives the loop back between blocks (counted, not timed)."""
    node = make_node(store=chain_of(8).store)
    asker = fake_peer(1)
    request = encode_message(SyncRequest(1, 200))
    assert len(request) < 40
    await node.gossip.on_message(asker, decode_message(request, 100))
    assert sent(asker) == []  # nothing was built while handling the frame
    assert asker.serving
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await settle(node)
    task.cancel()
    assert ticks >= 8  # the loop ran between every two blocks read
    assert not asker.serving
    [frame] = sent(asker)
    answer = decode_message(frame, len(frame))
    assert isinstance(answer, SyncResponse) and len(answer.blocks) == 8


async def test_an_unsolicited_sync_response_is_refused_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = chain_of(3)
    node = make_node()
    blamed = record_penalties(node, monkeypatch)
    blocks = tuple(b for h in (1, 2, 3) if (b := src.chain.block(h)) is not None)
    await node.gossip.on_message(fake_peer(2, 3), SyncResponse(blocks, src.chain.certificate(3)))
    assert node.chain.head().height == 0  # not applied
    assert blamed == [("v2", MINOR, False)]
    assert node.syncer.unsolicited == 1


# --- consensus buffer poisoning ------------------------------------------------------------


async def test_forged_proposals_do_not_push_the_real_block_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forged next-height proposal carries a block of its own: it must not be kept
    (the driver held the last 64 blocks, so 100 forged ones evicted the real one, which
    was then judged invalid for want of its block)."""
    node = make_node()
    blamed = record_penalties(node, monkeypatch)
    node.consensus_started = True
    node.driver.start()
    ahead = Kit(genesis=GENESIS)
    first = ahead.commit([]).block
    real_block = ahead.build([], proposer=proposer_index(2, 0)).block
    key = VALIDATOR_KEYS[proposer_index(2, 0)]
    real = Proposal.create(key, CHAIN, 2, 0, real_block.hash, -1)
    await node.gossip.on_message(fake_peer(1), ProposalMsg(real, real_block))
    assert node.core.holds(real) and real_block.hash in node.driver.blocks
    for i in range(100):
        header = dataclasses.replace(real_block.header, time_ms=real_block.header.time_ms + i + 1)
        fake = Block(header, (), real_block.last_cert)
        forged = Proposal(2, 0, fake.hash, -1, key.public_key, real.signature)
        await node.gossip.on_message(fake_peer(3), ProposalMsg(forged, fake))
    assert real_block.hash in node.driver.blocks
    assert set(node.driver.blocks) == {real_block.hash}  # counted in items
    assert len(blamed) == 100 and all(b == ("v3", SEVERE, True) for b in blamed)
    node.driver.blocks[first.hash] = first
    node.driver._run(node.driver._commit(fx.Commit(1, 0, first.hash, certify(first))))
    assert node.core.height == 2
    rs = node.core.round_state(0)
    assert rs is not None and rs.proposal == real
    assert node.core._validity.get(real_block.hash) is True  # its block was still here
    node.driver._cancel_timers()


async def test_a_vote_refused_for_lack_of_room_is_not_seen_nor_relayed_and_its_resend_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = make_node()
    blamed = record_penalties(node, monkeypatch)
    node.consensus_started = True
    node.driver.start()
    node.core.limits = Limits(max_buffered=1)
    peers = {i: fake_peer(i) for i in (1, 2, 3)}
    node.peers.peers.update({p.key: p for p in peers.values()})
    first = VoteMsg(Vote.create(VALIDATOR_KEYS[1], CHAIN, PREVOTE, 2, 0, b"\x01" * 32))
    second = VoteMsg(Vote.create(VALIDATOR_KEYS[2], CHAIN, PREVOTE, 2, 0, b"\x01" * 32))
    await node.gossip.on_message(peers[1], first)
    assert node.core.holds(first.vote) and node.gossip.frame_seen(encode_message(first))
    assert [len(sent(p)) for p in peers.values()] == [0, 1, 1]  # relayed
    await node.gossip.on_message(peers[2], second)  # no room for it
    assert not node.core.holds(second.vote)
    assert not node.gossip.frame_seen(encode_message(second))  # its re-send will be decoded
    assert [len(sent(p)) for p in peers.values()] == [0, 0, 0]  # and it went nowhere
    node.driver.on_synced(1)  # height 1 is committed: the buffer is released
    assert node.core.height == 2
    await node.gossip.on_message(peers[2], second)  # the re-send
    assert node.core.holds(second.vote) and node.gossip.frame_seen(encode_message(second))
    rs = node.core.round_state(0)
    assert rs is not None and rs.prevotes.total == 2
    assert blamed == []
    node.driver._cancel_timers()


async def test_stale_and_far_ahead_votes_are_not_relayed_even_when_forged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A vote for a decided height is refused before its signature is checked (late votes
    are normal, so the sender is not blamed); relaying it would let any peer have every
    node pass on frames it forged, each new one costing the whole mesh a decode."""
    src = chain_of(1)
    node = make_node()
    blamed = record_penalties(node, monkeypatch)
    block = src.chain.block(1)
    assert block is not None
    node.consensus_started = True
    node.driver.start()
    node.driver.blocks[block.hash] = block
    node.driver._run(node.driver._commit(fx.Commit(1, 0, block.hash, certify(block))))
    assert node.core.height == 2
    peers = {i: fake_peer(i) for i in (1, 2, 3)}
    node.peers.peers.update({p.key: p for p in peers.values()})
    real = Vote.create(VALIDATOR_KEYS[1], CHAIN, PREVOTE, 1, 0, block.hash)
    forged = dataclasses.replace(real, round=7)  # the signature no longer matches
    far = Vote.create(VALIDATOR_KEYS[2], CHAIN, PREVOTE, 2 + 1000, 0, b"\x02" * 32)
    for vote in (real, forged, far):
        await node.gossip.on_message(peers[3], VoteMsg(vote))
    assert [len(sent(p)) for p in peers.values()] == [0, 0, 0]
    assert node.core.counters["stale_height"] == 2
    assert node.core.counters["height_out_of_window"] == 1
    assert blamed == []  # late or early is not misbehaviour
    node.driver._cancel_timers()


async def test_a_vote_forgotten_by_dedup_is_handled_once_more_and_taken_only_once() -> None:
    """Gossip remembers a frame for SEEN_FOR_S seconds: a copy that comes later is
    decoded and handled again — the core counts it a duplicate and keeps one vote — and
    relayed once more, after which it is remembered again (no relay loop)."""
    node = make_node()
    node.consensus_started = True
    node.driver.start()
    now = [1000.0]
    node.gossip.clock = lambda: now[0]
    peers = {i: fake_peer(i) for i in (1, 2, 3)}
    node.peers.peers.update({p.key: p for p in peers.values()})

    def relayed() -> list[int]:  # frames queued for each peer since the last call
        return [len(sent(p)) for p in peers.values()]

    height = node.core.height
    vote = VoteMsg(Vote.create(VALIDATOR_KEYS[1], CHAIN, PREVOTE, height, 0, b"\x01" * 32))
    await node.gossip.on_message(peers[1], vote)
    assert node.core.holds(vote.vote) and relayed() == [0, 1, 1]
    await node.gossip.on_message(peers[2], vote)  # a relayed copy within the minute
    assert relayed() == [0, 0, 0]
    duplicates = node.core.counters["duplicate"]
    now[0] += SEEN_FOR_S + 1
    other = VoteMsg(Vote.create(VALIDATOR_KEYS[2], CHAIN, PREVOTE, height, 0, b"\x01" * 32))
    await node.gossip.on_message(peers[2], other)  # a newer frame: the old one expires
    assert not node.gossip.frame_seen(encode_message(vote)) and relayed() == [1, 0, 1]
    await node.gossip.on_message(peers[3], vote)  # a re-send after it was forgotten
    assert node.core.counters["duplicate"] == duplicates + 1
    rs = node.core.round_state(0)
    assert rs is not None and rs.prevotes.total == 2  # one vote of each validator
    assert relayed() == [0, 1, 0]  # relayed again, to all but its sender and its author
    await node.gossip.on_message(peers[2], vote)  # remembered again: dropped
    assert node.core.counters["duplicate"] == duplicates + 1 and relayed() == [0, 0, 0]
    node.driver._cancel_timers()
