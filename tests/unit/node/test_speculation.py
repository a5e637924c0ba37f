"""Executing a proposal ahead from its announced body (node/speculation.py): the
proposal is still checked in full, only a matching execution is taken, and only the
round's proposer's link is listened to."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ledger.encoding import decode, encode
from ledger.errors import DecodeError
from ledger.storage import MemoryStore
from ledger.tx import Transaction
from node.config import ConsensusConfig, NodeConfig
from node.executor import MAX_SPECULATED, ExecutedBlock, InvalidBlock
from node.runtime import Node
from node.speculation import EXECUTED, MISSING, NO_BLOCK, OVERTAKEN, Pending, Speculation
from node.wire import AnnounceMsg, TxBatch, decode_message, encode_message
from tests.unit.node.chainkit import (
    GENESIS,
    VALIDATOR_KEYS,
    Kit,
    certify,
    fake_peer,
    make_node,
    proposer_index,
    register_member_tx,
    sent,
)

PROPOSER = VALIDATOR_KEYS[0].public_key


def _txs(n: int = 3) -> list[Transaction]:
    return [register_member_tx(i, f"spec-clerk-{i}", ["inspector"]) for i in range(n)]


def _body(kit: Kit, executed: ExecutedBlock) -> tuple[Any, ...]:
    """speculate()'s arguments for the body of ``executed`` (built by another kit)."""
    block = executed.block
    return block.txs, block.header.time_ms, block.header.proposer, block.last_cert


class _Counted:
    """Counts the executor's executions (``_execute``) of one kit."""

    def __init__(self, kit: Kit) -> None:
        self.calls = 0
        original = kit.executor._execute

        def counted(*args: Any, **kw: Any) -> ExecutedBlock:
            self.calls += 1
            return original(*args, **kw)

        kit.executor._execute = counted  # type: ignore[method-assign]


# --- the executor ------------------------------------------------------------------------


def test_a_speculated_body_is_taken_by_its_proposal_and_not_executed_again() -> None:
    proposer, validator = Kit(), Kit()
    executed = proposer.build(_txs())
    assert validator.executor.speculate(*_body(validator, executed)) == executed.block.hash
    runs = _Counted(validator)
    checked = validator.executor.validate_block(executed.block, executed.block.header.time_ms)
    assert runs.calls == 0 and validator.executor.validations == {"ahead": 1}
    validator.executor.commit(checked, certify(executed.block))
    proposer.executor.commit(executed, certify(executed.block))
    # the same rows as the proposer's own commit, byte for byte
    assert sorted(validator.store.iterate(b"")) == sorted(proposer.store.iterate(b""))


def test_the_stored_block_is_the_proposals_not_the_announced_bodys() -> None:
    """A transaction's hash does not cover its signature: the body's copy of a
    transaction may carry another signature than the proposal's. The block row is
    written from the proposal."""
    proposer, validator = Kit(), Kit()
    txs = _txs()
    executed = proposer.build(txs)
    other = dataclasses.replace(txs[1], signature=bytes(64))
    assert other.hash == txs[1].hash and other.signature != txs[1].signature
    body = [txs[0], other, txs[2]]
    header = executed.block.header
    validator.executor.speculate(body, header.time_ms, header.proposer, None)
    checked = validator.executor.validate_block(executed.block, header.time_ms)
    validator.executor.commit(checked, certify(executed.block))
    stored = validator.chain.block(1)
    assert stored is not None and stored.txs[1].signature == txs[1].signature


def test_a_proposal_unlike_its_body_is_executed_itself() -> None:
    proposer, validator = Kit(), Kit()
    executed = proposer.build(_txs())
    txs, time_ms, key, cert = _body(validator, executed)
    assert validator.executor.speculate(txs, time_ms + 1, key, cert) != executed.block.hash
    assert validator.executor.speculate(txs[:2], time_ms, key, cert) != executed.block.hash
    runs = _Counted(validator)
    checked = validator.executor.validate_block(executed.block, time_ms)
    assert runs.calls == 1 and checked.block.hash == executed.block.hash
    assert validator.executor.validations == {"executed": 1}
    again = validator.executor.validate_block(executed.block, time_ms)  # the same proposal
    assert again is checked and validator.executor.validations == {"executed": 1}


def test_blocks_caught_up_are_not_counted_as_validations() -> None:
    proposer, follower = Kit(), Kit()
    executed = proposer.build(_txs())
    assert follower.executor.validate_block(executed.block, None, certified=True)
    assert not follower.executor.validations


def test_a_matching_body_spares_the_proposal_none_of_its_checks() -> None:
    proposer, validator = Kit(), Kit()
    tx = _txs(1)[0]
    forged = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, tx.payload, bytes(64))
    executed = proposer.build([forged])  # the proposer here skips its mempool
    validator.executor.speculate(*_body(validator, executed))
    with pytest.raises(InvalidBlock, match="bad transaction signature"):
        validator.executor.validate_block(executed.block, executed.block.header.time_ms)
    in_future = proposer.build(_txs())
    header = in_future.block.header
    validator.executor.speculate(*_body(validator, in_future))
    with pytest.raises(InvalidBlock, match="in the future"):
        validator.executor.validate_block(in_future.block, header.time_ms - 60_000)


def test_no_body_is_executed_at_a_time_not_after_the_head() -> None:
    kit = Kit()
    head = kit.chain.head()
    assert kit.executor.speculate(_txs(), head.time_ms, PROPOSER, None) is None
    assert not kit.executor._speculated


def test_speculated_blocks_are_bounded_and_forgotten_at_a_commit() -> None:
    kit = Kit()
    time_ms = kit.chain.head().time_ms
    for i in range(MAX_SPECULATED + 3):
        kit.executor.speculate(_txs(), time_ms + 1 + i, PROPOSER, None)
    assert len(kit.executor._speculated) == MAX_SPECULATED
    kit.commit(_txs(1))
    assert not kit.executor._speculated


# --- the validator's side: which bodies, and when -------------------------------------------


def _speculation(kit: Kit, pick: Any = None, awaited: Any = None, **kw: Any) -> Speculation:
    txs = _txs()
    pending = Pending(
        pick if pick is not None else (lambda hashes: txs[: len(hashes)]),
        awaited if awaited is not None else (lambda height, round_: True),
    )
    return Speculation(kit.executor, pending, **kw)


def _announce(height: int = 1, round_: int = 0, n: int = 3, time_ms: int = 0) -> AnnounceMsg:
    time_ms = time_ms or GENESIS.genesis_time_ms + 1000
    hashes = tuple(tx.hash for tx in _txs(n))
    return AnnounceMsg(height, round_, time_ms, None, hashes)


def _proposer(height: int, round_: int) -> bytes:
    return VALIDATOR_KEYS[proposer_index(height, round_)].public_key


def test_only_the_rounds_proposer_is_heard_once_a_round() -> None:
    spec = _speculation(Kit())
    msg = _announce(1, 0)
    other = next(k.public_key for k in VALIDATOR_KEYS if k.public_key != _proposer(1, 0))
    assert not spec.take(other, msg)
    assert spec.take(_proposer(1, 0), msg)
    assert not spec.take(_proposer(1, 0), msg)  # its second body of the round
    assert not spec.take(_proposer(1, 0), dataclasses.replace(msg, time_ms=msg.time_ms + 1))
    assert spec.take(_proposer(1, 1), _announce(1, 1))  # the next round's proposer
    assert not spec.take(_proposer(1, 0), msg)  # an earlier round, late


def test_a_body_naming_more_than_a_block_holds_is_ignored() -> None:
    spec = _speculation(Kit())
    limit = GENESIS.consensus.max_block_txs
    msg = dataclasses.replace(_announce(1, 0), tx_hashes=(b"\x01" * 32,) * (limit + 1))
    assert not spec.take(_proposer(1, 0), msg)


def test_a_body_for_the_next_height_is_held_until_it_is_entered() -> None:
    spec = _speculation(Kit())
    other = next(k.public_key for k in VALIDATOR_KEYS if k.public_key != _proposer(2, 0))
    spec.hold(other, _announce(2, 0))
    assert spec.held is None  # not its proposer's
    spec.hold(_proposer(2, 0), _announce(2, 0))
    assert spec.release(3) is None and spec.held is None  # a height skipped: dropped
    spec.hold(_proposer(2, 0), _announce(2, 0))
    assert spec.release(2) == (_proposer(2, 0), _announce(2, 0))


async def test_a_body_is_executed_once_its_transactions_arrive() -> None:
    kit = Kit()
    txs = _txs()
    here: list[Transaction] = []
    spec = _speculation(kit, pick=lambda hashes: list(here) if len(here) == 3 else None)
    task = asyncio.ensure_future(spec.run(_proposer(1, 0), _announce(1, 0)))
    await asyncio.sleep(0.01)
    assert not task.done()
    here.extend(txs)
    spec.arrived.set()
    assert await task == EXECUTED
    assert len(kit.executor._speculated) == 1 and spec.outcomes == {EXECUTED: 1}


async def test_a_body_whose_transactions_never_come_is_given_up() -> None:
    kit = Kit()
    spec = _speculation(kit, pick=lambda hashes: None, wait_s=0.05)
    assert await spec.run(_proposer(1, 0), _announce(1, 0)) == MISSING
    assert not kit.executor._speculated


async def test_a_body_overtaken_by_its_proposal_is_not_executed() -> None:
    kit = Kit()
    spec = _speculation(kit, awaited=lambda height, round_: False)
    assert await spec.run(_proposer(1, 0), _announce(1, 0)) == OVERTAKEN
    on_other_head = _speculation(kit)
    assert await on_other_head.run(_proposer(2, 0), _announce(2, 0)) == OVERTAKEN
    too_early = _speculation(kit)
    assert await too_early.run(_proposer(1, 0), _announce(1, 0, time_ms=1)) == NO_BLOCK
    assert not kit.executor._speculated


# --- the wire and the links ------------------------------------------------------------------


def test_an_announce_frame_round_trips_and_refuses_a_torn_hash_list() -> None:
    kit = Kit()
    executed = kit.build(_txs())
    kit.executor.commit(executed, certify(executed.block))
    msg = AnnounceMsg(2, 3, 1_700_000_005_000, certify(executed.block), _announce().tx_hashes)
    frame = encode_message(msg)
    assert decode_message(frame, 1 << 20) == msg
    body = decode(frame)["b"]  # type: ignore[index]
    torn = encode({"t": "announce", "b": body | {"txs": body["txs"][:-1]}})  # type: ignore[operator,index]
    with pytest.raises(DecodeError, match="whole number"):
        decode_message(torn, 1 << 20)
    with pytest.raises(DecodeError):  # a round beyond any
        decode_message(encode({"t": "announce", "b": body | {"round": 2**31}}), 1 << 20)  # type: ignore[operator]


async def test_a_proposer_sends_its_new_transactions_before_its_body_and_only_to_validators() -> (
    None
):
    node = make_node()
    validators = [fake_peer(i) for i in (1, 2, 3)]
    observer = dataclasses.replace(fake_peer(1), key=b"\x07" * 32, name="observer")
    for peer in [*validators, observer]:
        node.peers.peers[peer.key] = peer
    tx = _txs(1)[0]
    node.gossip.send_soon([tx])
    msg = _announce(1, 0, n=1)
    await node.gossip.announce(msg)
    for peer in validators:
        frames = [decode_message(f, 1 << 20) for f in sent(peer)]
        assert frames == [TxBatch((tx,)), msg]
    observed = [decode_message(f, 1 << 20) for f in sent(observer)]
    assert observed == [TxBatch((tx,))] and node.gossip.outbox == []  # no body for it


def _validator_node(speculate: bool) -> tuple[Node, ExecutedBlock, AnnounceMsg, bytes]:
    """A validator that is not height 1's proposer, holding the transactions of the block
    that proposer builds, the body it announces, and its key."""
    proposer = proposer_index(1, 0)
    executed = Kit().build(_txs(), proposer=proposer)
    me = next(i for i in range(4) if i != proposer)
    config = NodeConfig(name="under-test", consensus=ConsensusConfig(speculate=speculate))
    node = Node(config, GENESIS, VALIDATOR_KEYS[me], MemoryStore())
    for tx in executed.block.txs:
        node.mempool.add(tx)
    node.consensus_started = True
    node.driver.start()
    header = executed.block.header
    body = AnnounceMsg(1, 0, header.time_ms, None, tuple(tx.hash for tx in executed.block.txs))
    return node, executed, body, VALIDATOR_KEYS[proposer].public_key


async def test_a_validator_executes_the_body_its_proposer_announced() -> None:
    node, executed, body, proposer = _validator_node(speculate=True)
    other = next(k.public_key for k in VALIDATOR_KEYS if k.public_key != proposer)
    node.driver.on_announce(other, body)
    await asyncio.sleep(0.05)
    assert not node.executor._speculated  # not the proposer's link
    node.driver.on_announce(proposer, body)
    await asyncio.sleep(0.05)
    assert list(node.executor._speculated) == [executed.block.hash]
    assert node.driver.speculation.outcomes == {EXECUTED: 1}
    assert node.status()["consensus"]["speculation"] == {EXECUTED: 1}
    assert node.status()["consensus"]["validations"] == {"ahead": 0, "executed": 0}


async def test_without_speculate_a_body_is_ignored() -> None:
    node, _executed, body, proposer = _validator_node(speculate=False)
    node.driver.on_announce(proposer, body)
    await asyncio.sleep(0.05)
    assert not node.executor._speculated and not node.driver.speculation.outcomes
    assert "speculation" not in node.status()["consensus"]  # type: ignore[operator]
