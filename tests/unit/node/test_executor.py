"""Block building, validation by re-execution, and the one-batch commit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.block import Block, BlockHeader
from ledger.crypto import PrivateKey
from ledger.log import MerkleLog
from ledger.merkle import leaf_hash, root_of
from ledger.state import StateTree
from ledger.storage import open_leveldb
from ledger.tx import Transaction
from node.chain import ChainStore
from node.executor import InvalidBlock
from tests.unit.node.chainkit import ADMIN, CHAIN, Kit, certify, make_genesis, register_member_tx


def test_build_and_commit_updates_head_state_log_and_receipts() -> None:
    kit = Kit()
    txs = [register_member_tx(i, f"clerk-{i}", ["inspector"]) for i in range(3)]
    executed = kit.commit(txs)
    head = kit.chain.head()
    assert head.height == 1
    assert head.block_hash == executed.block.hash
    assert head.log_size == 3
    assert MerkleLog(kit.store).root() == root_of([tx.hash for tx in txs])
    receipts = kit.chain.receipts(1)
    assert [r.ok for r in receipts] == [True, True, True]
    assert kit.chain.tx_location(txs[1].hash) == (1, 1)
    assert StateTree(kit.store, head.state_root).root == executed.block.header.state_root


def test_tx_index_gives_each_transaction_its_leaf_in_the_log() -> None:
    kit = Kit()
    first = [register_member_tx(i, f"clerk-{i}", ["inspector"]) for i in range(2)]
    second = [register_member_tx(i, f"clerk-{i}", ["inspector"]) for i in range(2, 5)]
    kit.commit(first)
    kit.commit(second)
    leaves = [kit.chain.tx_log_index(tx.hash) for tx in first + second]
    assert leaves == [0, 1, 2, 3, 4]
    log = MerkleLog(kit.store)
    proof = log.prove_inclusion(3, log.size())
    proof.verify(leaf_hash(second[1].hash), log.root())  # raises unless it is leaf 3
    assert kit.chain.tx_log_index(b"\x00" * 32) is None


def test_another_validator_accepts_the_identical_block() -> None:
    proposer, validator = Kit(), Kit()
    executed = proposer.build([register_member_tx(0, "clerk", ["inspector"])])
    checked = validator.executor.validate_block(executed.block, executed.block.header.time_ms)
    assert checked.block.hash == executed.block.hash
    validator.executor.commit(checked, certify(executed.block))
    assert validator.chain.head().state_root == executed.block.header.state_root


def _with_header(block: Block, **changes: object) -> Block:
    header = dataclasses.replace(block.header, **changes)  # type: ignore[arg-type]
    return Block(header, block.txs, block.last_cert)


@pytest.mark.parametrize(
    "field",
    ["state_root", "log_root", "results_root"],
)
def test_a_wrong_root_is_refused(field: str) -> None:
    proposer, validator = Kit(), Kit()
    block = proposer.build([register_member_tx(0, "clerk", ["inspector"])]).block
    forged = _with_header(block, **{field: b"\x42" * 32})
    with pytest.raises(InvalidBlock, match=f"{field} differs"):
        validator.executor.validate_block(forged, block.header.time_ms)
    assert validator.chain.head().height == 0


def test_time_prev_hash_height_and_proposer_rules() -> None:
    proposer, validator = Kit(), Kit()
    block = proposer.build([]).block
    now = block.header.time_ms
    cases = {
        "not after": _with_header(block, time_ms=validator.chain.head().time_ms),
        "in the future": _with_header(block, time_ms=now + 60_000),
        "does not extend": _with_header(block, prev_hash=b"\x01" * 32),
        "not a validator": _with_header(block, proposer=PrivateKey.from_label("x").public_key),
        "another validator set": _with_header(block, validators_hash=b"\x02" * 32),
    }
    for message, forged in cases.items():
        with pytest.raises(InvalidBlock, match=message):
            validator.executor.validate_block(forged, now)


def test_bad_signature_and_repeated_transactions_are_refused() -> None:
    proposer, validator = Kit(), Kit()
    tx = register_member_tx(0, "clerk", ["inspector"])
    forged_tx = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, tx.payload, bytes(64))
    block = proposer.build([forged_tx]).block  # the proposer here skips its mempool
    with pytest.raises(InvalidBlock, match="bad transaction signature"):
        validator.executor.validate_block(block, block.header.time_ms)
    twice = proposer.build([tx, tx]).block
    with pytest.raises(InvalidBlock, match="repeats"):
        validator.executor.validate_block(twice, twice.header.time_ms)


def test_failed_transaction_gets_an_error_receipt_and_consumes_its_nonce() -> None:
    kit = Kit()
    bad = Transaction.create(ADMIN, CHAIN, "identity.register_member", 0, {"name": "x"})
    kit.commit([bad])
    receipt = kit.chain.receipts(1)[0]
    assert not receipt.ok
    assert receipt.code == "bad_payload"
    good = register_member_tx(1, "clerk", ["inspector"])
    kit.commit([good])
    assert kit.chain.receipts(2)[0].ok


def test_discarded_build_changes_nothing() -> None:
    kit = Kit()
    before = sorted(kit.store.iterate(b""))  # type: ignore[attr-defined]
    kit.build([register_member_tx(0, "clerk", ["inspector"])])
    assert sorted(kit.store.iterate(b"")) == before  # type: ignore[attr-defined]


def test_commit_is_one_synced_batch_and_survives_reopen(tmp_path: Path) -> None:
    store = open_leveldb(str(tmp_path / "db"), create=True)
    kit = Kit(store=store)
    executed = kit.commit([register_member_tx(0, "clerk", ["inspector"])])
    kit.commit([register_member_tx(1, "clerk-2", ["inspector"])])
    store.close()
    reopened = open_leveldb(str(tmp_path / "db"))
    chain = ChainStore(reopened, make_genesis())
    assert chain.head().height == 2
    assert chain.block(1) == executed.block
    assert chain.certificate(1) is not None
    reopened.close()


def test_a_store_from_another_genesis_is_refused() -> None:
    kit = Kit()
    other = dataclasses.replace(make_genesis(), chain_id="other-chain")
    with pytest.raises(Exception, match="another chain"):
        ChainStore(kit.store, other)


def test_header_round_trip() -> None:
    kit = Kit()
    header = kit.commit([]).block.header
    assert BlockHeader.from_obj(header.to_obj()) == header
