"""The network path's economies: frames encoded once and relayed as received,
duplicates dropped before they are decoded, gossiped transactions not gossiped again,
known transactions not rebuilt (the proposer's side: tests/unit/node/test_proposer.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import encode
from ledger.tx import Transaction
from ledger.votes import Proposal
from node import peers as peers_mod
from node.config import P2PConfig
from node.peers import Peer, PeerManager
from node.wire import (
    ProposalMsg,
    StatusMsg,
    SyncResponse,
    TxBatch,
    VoteMsg,
    WireMessage,
    decode_message,
    encode_message,
    framed,
)
from tests.unit.node.chainkit import (
    CHAIN,
    VALIDATOR_KEYS,
    Kit,
    a_vote,
    fake_peer,
    make_node,
    member_tx,
)

# --- wire ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 300])
def test_a_tx_batch_frame_is_the_canonical_encoding(n: int) -> None:
    txs = tuple(member_tx(i) for i in range(n))
    frame = encode_message(TxBatch(txs))
    assert frame == encode({"t": "txs", "b": [tx.to_obj() for tx in txs]})
    assert decode_message(frame, 1 << 24) == TxBatch(txs)


def test_consensus_frames_are_encoded_once_and_relayed_as_received() -> None:
    msg = framed(VoteMsg(a_vote()))
    assert msg.raw == encode({"t": "vote", "b": a_vote().to_obj()})
    assert encode_message(msg) is msg.raw  # re-sending costs no encoding
    received = decode_message(msg.raw, 1 << 20)
    assert isinstance(received, VoteMsg)
    assert received == msg and received.raw == msg.raw
    assert encode_message(received) is received.raw  # relaying costs no encoding


def test_a_known_transaction_is_reused_only_when_identical() -> None:
    tx = member_tx(0, {"count": 1})
    known = {tx.signature: tx}
    got = decode_message(encode_message(TxBatch((tx,))), 1 << 20, known.get)
    assert isinstance(got, TxBatch) and got.txs[0] is tx

    # Same signature, a payload equal in Python (1 == True) but not in msgpack.
    forged = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, {"count": True}, tx.signature)
    got = decode_message(encode_message(TxBatch((forged,))), 1 << 20, known.get)
    assert isinstance(got, TxBatch)
    assert got.txs[0] is not tx and got.txs[0].payload["count"] is True
    assert got.txs[0].hash != tx.hash


def test_a_proposal_takes_known_transactions_from_the_lookup() -> None:
    kit = Kit()
    txs = [member_tx(i) for i in range(3)]
    block = kit.build(txs).block
    proposal = Proposal.create(VALIDATOR_KEYS[0], CHAIN, 1, 0, block.hash, -1)
    frame = encode_message(ProposalMsg(proposal, block))
    known = {tx.signature: tx for tx in txs[:2]}
    got = decode_message(frame, 1 << 24, known.get)
    assert isinstance(got, ProposalMsg)
    assert got == ProposalMsg(proposal, block) and got.raw == frame
    assert got.block.txs[0] is txs[0] and got.block.txs[1] is txs[1]
    assert got.block.hash == block.hash
    got.block.check_tx_root()


# --- peers: duplicates dropped before decoding --------------------------------------------


@dataclass
class FakeFrame:
    data: bytes
    type: aiohttp.WSMsgType = aiohttp.WSMsgType.BINARY


@dataclass
class FakeWs:
    frames: list[bytes]
    closed: list[bool] = field(default_factory=list)

    async def __aiter__(self) -> AsyncIterator[FakeFrame]:
        for frame in self.frames:
            yield FakeFrame(frame)

    async def close(self) -> None:
        self.closed.append(True)


def counting_manager(
    monkeypatch: pytest.MonkeyPatch, seen: Callable[[bytes], bool] | None = None
) -> tuple[PeerManager, list[bytes], list[WireMessage]]:
    """A peer manager of validator 0 that records every frame it decodes and every
    message it hands on."""
    decoded: list[bytes] = []
    received: list[WireMessage] = []

    def counting_decode(data: bytes, max_size: int, known_tx: Any = None) -> WireMessage:
        decoded.append(data)
        return decode_message(data, max_size, known_tx)

    monkeypatch.setattr(peers_mod, "decode_message", counting_decode)

    async def on_message(peer: Peer, msg: WireMessage) -> None:
        received.append(msg)

    async def on_connect(peer: Peer) -> None:
        pass

    manager = PeerManager(
        VALIDATOR_KEYS[0],
        CHAIN,
        {k.public_key: f"v{i}" for i, k in enumerate(VALIDATOR_KEYS)},
        P2PConfig(),
        on_message,
        on_connect,
        seen=seen,
    )
    return manager, decoded, received


async def test_a_frame_already_seen_is_dropped_before_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    duplicate = encode_message(framed(VoteMsg(a_vote())))
    fresh = encode_message(StatusMsg(3))
    manager, decoded, received = counting_manager(monkeypatch, lambda frame: frame == duplicate)
    ws = FakeWs([duplicate, fresh, duplicate])
    peer = Peer(VALIDATOR_KEYS[1].public_key, "v1", ws, dialed_by_us=True)  # type: ignore[arg-type]
    await manager._read(peer)
    assert decoded == [fresh]
    assert received == [StatusMsg(3)]
    assert manager.duplicate_frames == 2 and manager.bad_frames == 0


async def test_blocks_nobody_asked_for_are_dropped_before_they_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync response (up to max_frame_bytes) from a peer we did
    not ask is told by its last bytes, dropped undecoded, and counts against the peer;
    the link stays up (a minor offence)."""
    src = Kit()
    src.commit([])
    response = encode_message(SyncResponse((src.chain.block(1),), src.chain.certificate(1)))  # type: ignore[arg-type]
    manager, decoded, received = counting_manager(monkeypatch)
    status = encode_message(StatusMsg(3))
    ws = FakeWs([response, status])
    peer = Peer(VALIDATOR_KEYS[1].public_key, "v1", ws, dialed_by_us=True)  # type: ignore[arg-type]
    await manager._read(peer)
    assert decoded == [status] and received == [StatusMsg(3)]  # read on after it
    assert manager.unsolicited_frames == 1 and manager.scores[peer.key] == -peers_mod.MINOR
    assert ws.closed == []
    peer.sync_owed = 1  # asked: the answer is decoded and handed on
    peer.ws = FakeWs([response])  # type: ignore[assignment]
    await manager._read(peer)
    assert decoded == [status, response] and isinstance(received[-1], SyncResponse)


# --- runtime: gossip ----------------------------------------------------------------------


async def test_transactions_gossiped_by_a_validator_are_not_gossiped_again() -> None:
    node = make_node()
    gossiped, submitted = member_tx(0), member_tx(1)
    await node.gossip.on_message(fake_peer(1), TxBatch((gossiped,)))
    assert gossiped.hash in node.mempool
    assert node.gossip.outbox == [] and node.gossip.relay == {}

    assert await node.submit([submitted]) == [None]  # from the API: gossiped to every peer
    assert node.gossip.outbox == [submitted]


async def test_transactions_from_an_observer_are_relayed_to_the_other_peers() -> None:
    node = make_node()
    observer = PrivateKey.from_label("net-path-observer").public_key
    tx = member_tx(0)
    await node.gossip.on_message(Peer(observer, "obs", None, True), TxBatch((tx,)))  # type: ignore[arg-type]
    assert node.gossip.outbox == [] and node.gossip.relay == {observer: [tx]}


async def test_what_is_admitted_while_gossip_sends_a_batch_goes_with_the_next_one() -> None:
    """The gossip loop swaps its outbox for a new one every interval; a transaction
    admitted after the swap (its signature was being checked) must land in the new
    one, not in the batch already sent (half of what clients sent was lost that way)."""
    node = make_node()
    sent: list[object] = []

    async def check_while_gossip_sends(txs: object, *, signatures: bool = True) -> None:
        gossip = node.gossip
        sent.append((gossip.outbox, dict(gossip.relay)))
        gossip.outbox, gossip.relay = [], {}  # what gossip_txs does every interval

    node.admission.signature_worker.check = check_while_gossip_sends  # type: ignore[method-assign]
    submitted, relayed = member_tx(0), member_tx(1)
    assert await node.submit([submitted]) == [None]
    assert node.gossip.outbox == [submitted]
    observer = PrivateKey.from_label("net-path-observer").public_key
    await node.gossip.on_message(Peer(observer, "obs", None, True), TxBatch((relayed,)))  # type: ignore[arg-type]
    assert node.gossip.relay == {observer: [relayed]}
    assert sent == [([], {}), ([submitted], {})]  # no batch sent held what came after it


def test_a_node_dedups_frames_by_content_before_decoding() -> None:
    node = make_node()
    frame = encode_message(framed(VoteMsg(a_vote())))
    assert node.peers.seen is not None and node.peers.known_tx is not None
    assert not node.peers.seen(frame)
    assert node.gossip.mark_seen(frame)
    assert node.peers.seen(frame)
    assert node.peers.seen(bytes(bytearray(frame)))  # by content, not identity
