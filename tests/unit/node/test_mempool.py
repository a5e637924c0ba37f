"""Mempool admission, ordering, caps and post-commit cleanup."""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from ledger.state import StateTree
from ledger.tx import Transaction
from node.mempool import MAX_NONCE_GAP, Mempool, MempoolError
from node.mempool_errors import SenderBacklogError
from tests.unit.node.chainkit import ADMIN, CHAIN, Kit, register_member_tx


def make_pool(kit: Kit, max_txs: int = 1000) -> Mempool:
    return Mempool(
        kit.genesis,
        kit.sigs,
        lambda: StateTree(kit.store, kit.chain.head().state_root),
        lambda h: kit.chain.tx_location(h) is not None,
        max_txs=max_txs,
    )


def rejection(pool: Mempool, tx: Transaction) -> MempoolError:
    with pytest.raises(MempoolError) as info:
        pool.add(tx)
    return info.value


def test_admits_and_reaps_in_nonce_order() -> None:
    kit = Kit()
    pool = make_pool(kit)
    txs = [register_member_tx(i, f"c{i}", ["auditor"]) for i in range(5)]
    for tx in reversed(txs):  # arrival order does not matter
        pool.add(tx)
    assert pool.reap(100, 10**9) == txs
    assert pool.reap(2, 10**9) == txs[:2]


def test_a_gap_holds_later_nonces_back() -> None:
    kit = Kit()
    pool = make_pool(kit)
    pool.add(register_member_tx(1, "c1", ["auditor"]))
    assert pool.reap(100, 10**9) == []
    pool.add(register_member_tx(0, "c0", ["auditor"]))
    assert [tx.nonce for tx in pool.reap(100, 10**9)] == [0, 1]


def test_rejections_carry_code_and_http_status() -> None:
    kit = Kit()
    pool = make_pool(kit, max_txs=3)
    tx = register_member_tx(0, "c0", ["auditor"])
    pool.add(tx)
    assert (rejection(pool, tx).code, rejection(pool, tx).http_status) == ("duplicate", 409)
    same_nonce = register_member_tx(0, "other", ["auditor"])
    assert rejection(pool, same_nonce).code == "bad_nonce"
    far = register_member_tx(MAX_NONCE_GAP + 1, "far", ["auditor"])
    assert rejection(pool, far).http_status == 409
    forged = Transaction(tx.kind, tx.chain_id, tx.sender, 1, tx.payload, bytes(64))
    err = rejection(pool, forged)
    assert (err.code, err.http_status) == ("bad_signature", 401)
    wrong_chain = Transaction.create(ADMIN, "other-chain", tx.kind, 1, tx.payload)
    assert rejection(pool, wrong_chain).http_status == 400
    stranger = PrivateKey.from_label("stranger")
    unknown = Transaction.create(stranger, CHAIN, "identity.register_member", 0, tx.payload)
    assert rejection(pool, unknown).http_status in (403, 404)
    pool.add(register_member_tx(1, "c1", ["auditor"]))
    pool.add(register_member_tx(2, "c2", ["auditor"]))
    full = rejection(pool, register_member_tx(3, "c3", ["auditor"]))
    assert (full.code, full.http_status) == ("mempool_full", 429)
    assert len(pool) == 3


def test_wrong_role_is_refused_at_admission() -> None:
    kit = Kit()
    clerk = PrivateKey.from_label("clerk")
    kit.commit([register_member_tx(0, "clerk", ["auditor"])])
    pool = make_pool(kit)
    tx = Transaction.create(
        clerk,
        CHAIN,
        "identity.register_member",
        0,
        {"public_key": PrivateKey.from_label("y").public_key, "name": "y", "roles": ["auditor"]},
    )
    err = rejection(pool, tx)
    assert err.http_status == 403


def test_update_after_commit_drops_committed_and_stale() -> None:
    kit = Kit()
    pool = make_pool(kit)
    txs = [register_member_tx(i, f"c{i}", ["auditor"]) for i in range(3)]
    for tx in txs:
        pool.add(tx)
    kit.commit(txs[:2])
    pool.update(txs[:2])
    assert len(pool) == 1
    assert pool.reap(10, 10**9) == [txs[2]]
    assert rejection(pool, txs[0]).code == "duplicate"


def test_signature_is_verified_once() -> None:
    proposer, validator = Kit(), Kit()
    pool = make_pool(validator)
    tx = register_member_tx(0, "c0", ["auditor"])
    pool.add(tx)  # arrived by gossip: verified on admission
    assert validator.sigs.verifications == 1
    built = proposer.build([tx])
    validator.executor.validate_block(built.block, built.block.header.time_ms)
    assert validator.sigs.verifications == 1  # the proposal did not cost a second check
    assert validator.sigs.hits == 1


def test_reap_respects_byte_cap_and_round_robins_senders() -> None:
    kit = Kit()
    kit.commit(
        [register_member_tx(0, "clerk-a", ["admin"]), register_member_tx(1, "clerk-b", ["admin"])]
    )
    pool = make_pool(kit)
    a, b = PrivateKey.from_label("clerk-a"), PrivateKey.from_label("clerk-b")

    def reg(key: PrivateKey, nonce: int) -> Transaction:
        new = PrivateKey.from_label(f"{key.public_key.hex()}-{nonce}")
        payload = {"public_key": new.public_key, "name": "n", "roles": ["auditor"]}
        return Transaction.create(key, CHAIN, "identity.register_member", nonce, payload)

    for n in range(3):
        pool.add(reg(a, n))
        pool.add(reg(b, n))
    senders = [tx.sender for tx in pool.reap(4, 10**9)]
    assert senders == [a.public_key, b.public_key, a.public_key, b.public_key]
    one = pool.reap(100, len(reg(a, 0).body) + 64)
    assert len(one) == 1


def test_the_pending_bytes_are_bounded_as_well_as_the_count() -> None:
    """Transactions fill the pool by bytes long before ``max_txs``: refused with
    ``mempool_full`` (429) and nothing changed; committed ones give their bytes back."""
    kit = Kit()
    txs = [register_member_tx(i, f"c{i}".ljust(100, "x"), ["auditor"]) for i in range(6)]
    each = len(txs[0].body) + 64
    pool = Mempool(
        kit.genesis,
        kit.sigs,
        lambda: StateTree(kit.store, kit.chain.head().state_root),
        lambda h: kit.chain.tx_location(h) is not None,
        max_bytes=4 * each + each // 2,
    )
    for tx in txs[:4]:
        pool.add(tx)
    assert pool.bytes == sum(len(tx.body) + 64 for tx in txs[:4])
    err = rejection(pool, txs[4])
    assert (err.code, err.http_status) == ("mempool_full", 429) and len(pool) == 4
    kit.commit(txs[:2])
    pool.update(txs[:2])
    assert pool.bytes == sum(len(tx.body) + 64 for tx in txs[2:4])
    pool.add(txs[4])
    assert len(pool) == 3


def test_the_next_nonce_past_the_window_is_not_now_but_a_hole_is_refused() -> None:
    """A sender whose ready run already fills the nonce window gets 429 for the next
    one (the window moves as the run commits): a client that gave it up as 409 would
    strand every later transaction. A nonce past the window with a hole before it is
    still a wrong nonce."""
    kit = Kit()
    pool = make_pool(kit)
    for n in range(MAX_NONCE_GAP + 1):  # nonces 0..256: the whole window, all ready
        pool.add(register_member_tx(n, f"w{n}", ["auditor"]))
    before = len(pool)
    nxt = rejection(pool, register_member_tx(MAX_NONCE_GAP + 1, "next", ["auditor"]))
    assert isinstance(nxt, SenderBacklogError)
    assert (nxt.code, nxt.http_status, nxt.retry_after_s) == ("sender_backlog", 429, 2)
    assert pool.precheck(register_member_tx(MAX_NONCE_GAP + 1, "next", ["auditor"])) is not None
    hole = rejection(pool, register_member_tx(MAX_NONCE_GAP + 2, "hole", ["auditor"]))
    assert (hole.code, hole.http_status) == ("bad_nonce", 409)
    assert len(pool) == before  # a refusal changes nothing
