"""Head statements between peers (node/gossip.py): a good one is kept and passed on to
the peers that are not validators only; a forged one costs its sender its score."""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from ledger.head import HeadStatement
from node.peers import Peer
from node.runtime import Node
from node.wire import HeadMsg, decode_message
from tests.unit.node.chainkit import (
    CHAIN,
    VALIDATOR_KEYS,
    Kit,
    fake_peer,
    make_node,
    sent,
)
from tests.unit.node.chainkit import register_member_tx as member

OBSERVER = PrivateKey.from_label("head-gossip-observer")


def linked_node() -> tuple[Node, Peer, Peer, Peer]:
    kit = Kit()
    kit.commit([member(0, "head-gossip-member", ["viewer"])])
    node = make_node(VALIDATOR_KEYS[0], kit.store)
    v1, v2 = fake_peer(1), fake_peer(2)
    observer = Peer(key=OBSERVER.public_key, name="observer", ws=None, dialed_by_us=True)  # type: ignore[arg-type]
    for peer in (v1, v2, observer):
        node.peers.peers[peer.key] = peer
    return node, v1, v2, observer


def statement(node: Node, key: PrivateKey, **changes: object) -> HeadStatement:
    head = node.chain.head()
    s = HeadStatement.create(key, CHAIN, head.height, head.block_hash, head.time_ms + 1000)
    return s.replace(**changes) if changes else s


async def test_a_good_statement_is_kept_and_relayed_to_observers_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, v1, v2, observer = linked_node()
    blamed: list[str] = []
    monkeypatch.setattr(node.peers, "penalise", lambda peer, why, *a, **k: blamed.append(why))
    s = statement(node, VALIDATOR_KEYS[1])
    await node.gossip.on_message(v1, HeadMsg(s))
    assert node.head_statements(s.height) == [s] and blamed == []
    relayed = [decode_message(frame, 1 << 20) for frame in sent(observer)]
    assert relayed == [HeadMsg(s)]
    assert sent(v2) == [] and sent(v1) == []  # validators have it from its signer
    await node.gossip.on_message(v2, HeadMsg(s))  # a copy: nothing more
    assert sent(observer) == []


@pytest.mark.parametrize(
    "forge",
    [
        lambda node: statement(node, VALIDATOR_KEYS[1], signature=bytes(64)),
        lambda node: statement(node, PrivateKey.from_label("not-a-validator")),
    ],
    ids=["bad-signature", "non-validator"],
)
async def test_a_forged_statement_blames_its_sender(monkeypatch: pytest.MonkeyPatch, forge) -> None:  # type: ignore[no-untyped-def]
    node, v1, _v2, observer = linked_node()
    blamed: list[str] = []
    monkeypatch.setattr(node.peers, "penalise", lambda peer, why, *a, **k: blamed.append(why))
    s = forge(node)
    await node.gossip.on_message(v1, HeadMsg(s))
    assert blamed == ["sent a head statement that does not check out"]
    assert node.head_statements(s.height) == [] and sent(observer) == []
