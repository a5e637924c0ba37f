"""A validator node's start (node/runtime.py): consensus only after catching up (F2),
the locked block restored after a crash between precommit and commit (F1b), and a
local store fault that stops the node (F4)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ledger.crypto import PrivateKey
from ledger.errors import StoreDamagedError
from ledger.storage import KVStore, MemoryStore
from ledger.votes import NIL, Vote, VoteType
from node import startup
from node.consensus import events as ev
from node.consensus.signer import Signer
from node.consensus.types import Step
from node.runtime import Node
from node.wire import (
    ProposalMsg,
    StatusMsg,
    SyncResponse,
    TxBatch,
    VoteMsg,
    WireMessage,
    encode_message,
)
from tests.unit.node.chainkit import (
    CHAIN,
    GENESIS,
    VALIDATOR_KEYS,
    Kit,
    fake_peer,
    make_node,
    proposer_index,
    register_member_tx,
    sent,
)

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
ALL = {k.public_key for k in VALIDATOR_KEYS}


def signing_node(tmp_path: Path, key: PrivateKey, store: KVStore) -> Node:
    return make_node(key, store, signer_state=str(tmp_path / "signer_state.msgpack"))


# --- F2: sign only once caught up ---------------------------------------------------------


def test_consensus_waits_for_the_peers_heights_then_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup, "STARTUP_STATUS_WAIT_S", 0.5)

    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        task = asyncio.create_task(startup.start_consensus(node))
        await asyncio.sleep(0.2)
        assert not node.consensus_started  # nobody has told us their height yet
        await asyncio.wait_for(task, 2)  # nobody will: start anyway, at our own head
        assert node.consensus_started and node.core.height == 1

    asyncio.run(main())


def test_a_restarted_validator_catches_up_before_it_signs(tmp_path: Path) -> None:
    src = Kit(genesis=GENESIS)
    for i in range(3):
        src.commit([register_member_tx(i + 1, f"start-member-{i}", ["viewer"])])

    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        peers = [fake_peer(1), fake_peer(2)]
        for p in peers:
            node.peers.peers[p.key] = p
        task = asyncio.create_task(startup.start_consensus(node))
        for p in peers:
            await node.gossip.on_message(p, StatusMsg(3))
        await asyncio.sleep(0.3)
        assert not node.consensus_started  # heard f+1, but behind them
        requests = [f for p in peers for f in sent(p)]
        assert requests, "it asked a peer for the blocks"
        blocks = tuple(b for h in (1, 2, 3) if (b := src.chain.block(h)) is not None)
        asker = next(
            p for p in peers if node.syncer._outstanding and node.syncer._outstanding.peer is p
        )
        await node.gossip.on_message(asker, SyncResponse(blocks, src.chain.certificate(3)))
        await asyncio.wait_for(task, 2)
        assert node.consensus_started and node.core.height == 4
        assert node.chain.head().block_hash == src.chain.head().block_hash

    asyncio.run(main())


def test_consensus_messages_are_not_handled_before_the_start(tmp_path: Path) -> None:
    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        other = Signer(VALIDATOR_KEYS[1], CHAIN)
        vote = other.sign_vote(PREVOTE, 1, 0, NIL)
        await node.gossip.on_message(fake_peer(1), VoteMsg(vote))
        assert node.core.known_messages() == []
        assert node.signer is not None and node.signer.last_signed is None

    asyncio.run(main())


def test_a_message_that_arrived_before_the_start_is_handled_when_it_comes_again(
    tmp_path: Path,
) -> None:
    """Peers re-send their votes each second; the copy that came while we were catching
    up must not make the later copies look like duplicates."""

    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        other = Signer(VALIDATOR_KEYS[1], CHAIN)
        vote = other.sign_vote(PREVOTE, 1, 0, NIL)
        await node.gossip.on_message(fake_peer(1), VoteMsg(vote))
        node.consensus_started = True
        node.driver.start()
        await node.gossip.on_message(fake_peer(1), VoteMsg(vote))
        assert vote in node.core.known_messages()

    asyncio.run(main())


# --- F1b: the locked block survives a crash before the commit -----------------------------


def test_a_validator_locked_on_a_block_it_never_wrote_can_propose_it_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    me = proposer_index(1, 1)
    first = proposer_index(1, 0)
    assert me != first
    others = [i for i in range(4) if i != me]
    signers = {i: Signer(VALIDATOR_KEYS[i], CHAIN) for i in others}
    store = MemoryStore()
    maker = Kit(genesis=GENESIS)
    block = maker.executor.build_block(
        [], int(time.time() * 1000), VALIDATOR_KEYS[first].public_key, None
    ).block
    b = block.hash

    async def before_the_crash() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[me], store)
        node.gossip.status_from |= ALL
        await startup.start_consensus(node)
        proposal = signers[first].sign_proposal(1, 0, b, -1)
        node.driver.on_proposal(ProposalMsg(proposal, block))
        for i in [i for i in others if i != first][:2]:
            node.driver.on_vote(signers[i].sign_vote(PREVOTE, 1, 0, b))
        assert node.signer is not None
        lock = node.signer.lock(1)
        assert lock is not None and lock.block_hash == b  # precommitted: locked
        assert node.chain.head().height == 0  # ... and crashed before the commit
        node.driver._cancel_timers()

    asyncio.run(before_the_crash())

    async def after_the_restart() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[me], store)  # the block is nowhere else
        out: list[WireMessage] = []
        node.peers.broadcast = lambda msg, **kw: out.append(msg)  # type: ignore[method-assign]
        node.gossip.status_from |= ALL
        await startup.start_consensus(node)
        assert node.driver.blocks.get(b) == block  # restored from the signer state
        # the others precommitted it too and died: round 0 ends without a decision
        for i in [i for i in others if i != first][:2]:
            node.driver.on_vote(signers[i].sign_vote(PRECOMMIT, 1, 0, b))
        node.driver._fire(ev.TimeoutFired(1, 0, Step.PRECOMMIT))
        proposals = [m for m in out if isinstance(m, ProposalMsg)]
        assert [(p.proposal.round, p.proposal.block_hash, p.block) for p in proposals] == [
            (1, b, block)
        ]
        for vote_type in (PREVOTE, PRECOMMIT):  # round 1 decides the block
            for i in others[:2]:
                node.driver.on_vote(signers[i].sign_vote(vote_type, 1, 1, b))
        assert node.chain.head().height == 1 and node.chain.head().block_hash == b
        node.driver._cancel_timers()

    with caplog.at_level("ERROR"):
        asyncio.run(after_the_restart())
    assert "no block for our own proposal" not in caplog.text


# --- F4: a local fault stops the node -----------------------------------------------------


def test_a_local_store_fault_stops_the_node(tmp_path: Path) -> None:
    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        stop = asyncio.Event()
        node._stop = stop
        node.syncer._local_fault(7, OSError("Corruption: bad block"))
        assert stop.is_set()
        assert node.fatal is not None and "height 7" in node.fatal

    asyncio.run(main())


def test_a_vote_the_core_set_aside_is_looked_at_again_when_it_comes_again(
    tmp_path: Path,
) -> None:
    """An equivocator's second prevote, for a block whose proposal has not reached us, is
    set aside by the core; its copies (re-sent each second) must not be dropped as seen,
    or a polka that exists can never be seen here (found by the byzantine-over-a-lossy-
    relay scenario: the honest validators stayed locked apart for a minute)."""

    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        node.consensus_started = True
        node.driver.start()
        byzantine = VALIDATOR_KEYS[1]
        first = VoteMsg(Vote.create(byzantine, CHAIN, PREVOTE, 1, 0, NIL))
        second = VoteMsg(Vote.create(byzantine, CHAIN, PREVOTE, 1, 0, b"\x07" * 32))
        await node.gossip.on_message(fake_peer(1), first)
        await node.gossip.on_message(fake_peer(2), second)  # its proposal is not here
        seen = node.gossip._seen
        assert node.driver.core.holds(first.vote) and hash(encode_message(first)) in seen
        assert not node.driver.core.holds(second.vote)
        assert hash(encode_message(second)) not in seen
        assert node.gossip.frame_seen(encode_message(first))
        assert not node.gossip.frame_seen(encode_message(second))  # the next copy gets decoded

    asyncio.run(main())


def test_a_store_fault_met_while_handling_a_peer_message_stops_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F4 on the gossip path: the damage is ours, so no traceback, no blamed peer: stop."""

    def damaged(tx: object, **_: object) -> None:
        raise StoreDamagedError("the database at /x is damaged: Corruption: block checksum")

    async def main() -> None:
        node = signing_node(tmp_path, VALIDATOR_KEYS[0], MemoryStore())
        blamed: list[str] = []
        monkeypatch.setattr(node.mempool, "add", damaged)
        monkeypatch.setattr(node.peers, "penalise", lambda peer, why: blamed.append(why))
        await node.gossip.on_message(fake_peer(1), TxBatch((register_member_tx(0, "clerk", []),)))
        assert node.fatal is not None and "block checksum" in node.fatal
        assert blamed == []

    asyncio.run(main())
