"""Admission costs and limits in the mempool and the node: cheap checks before any
signature, each signature checked once, and the limits that stop mempool pinning
(gapped nonces per sender, pending per organisation, a TTL, gapped ones evicted first).

Counts of signature checks, never timings: the cost targets are in
``benchmarks/admission.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import PrivateKey
from ledger.genesis import Genesis, Member, Organisation
from ledger.state import StateTree
from ledger.tx import Transaction
from node.admission import Admission
from node.api.metrics import Metrics
from node.mempool import DEFAULT_MAX_BYTES, MAX_NONCE_GAP, Mempool, MempoolError
from node.mempool_errors import SENDER_BACKLOG_RETRY_S, RetryLaterError
from node.peers import Peer
from node.runtime import Node
from node.sigcache import SignatureCache, SignatureWorker
from node.wire import TxBatch
from tests.unit.garbage_kit import cyclic_garbage
from tests.unit.node.chainkit import ADMIN, CHAIN, VALIDATOR_KEYS, Kit, make_genesis, make_node

PINNERS = [PrivateKey.from_label(f"pinning-org-member-{i}") for i in range(20)]
HONEST = PrivateKey.from_label("honest-org-admin")
STRANGER = PrivateKey.from_label("not-a-member")


def two_org_genesis() -> Genesis:
    """The kit's genesis plus a trader organisation with 20 keys and another with one."""
    base = make_genesis()
    pinning = Organisation(
        "pinning-traders",
        "Pinning Traders",
        "trader",
        "Busan",
        tuple(Member(k.public_key, ("admin",), f"m{i}") for i, k in enumerate(PINNERS)),
    )
    honest = Organisation(
        "honest-traders", "Honest", "trader", "Busan", (Member(HONEST.public_key, ("admin",), "a"),)
    )
    return dataclasses.replace(base, organisations=(*base.organisations, pinning, honest))


def pool_of(kit: Kit, max_txs: int = 1000, **limits: float) -> Mempool:
    pool = Mempool(
        kit.genesis,
        kit.sigs,
        lambda: StateTree(kit.store, kit.chain.head().state_root),
        lambda h: kit.chain.tx_location(h) is not None,
        max_txs=max_txs,
    )
    for name, value in limits.items():  # set like this, a limit the pool ignores fails the test
        setattr(pool, name, value)
    return pool


def member_tx(key: PrivateKey, nonce: int, *, role: str = "trader") -> Transaction:
    """``identity.register_member`` by ``key`` (an admin): passes every admission check."""
    new = PrivateKey.from_label(f"new/{key.public_key.hex()}/{nonce}")
    payload = {"public_key": new.public_key, "name": f"n{nonce}", "roles": [role]}
    return Transaction.create(key, CHAIN, "identity.register_member", nonce, payload)


def forged(tx: Transaction) -> Transaction:
    return dataclasses.replace(tx, signature=bytes([tx.signature[0] ^ 1]) + tx.signature[1:])


def try_add(pool: Mempool, tx: Transaction) -> str:
    try:
        pool.add(tx)
    except MempoolError as exc:
        return exc.code
    return "ok"


# --- mempool pinning ----------------------------------------------------------------------------


def test_many_keys_of_one_org_cannot_pin_the_mempool_with_gapped_nonces() -> None:
    """20 keys of one organisation each send 256 future-nonce transactions (nonce 0 is
    never sent): they do not fill the pool, and an honest transaction of another
    organisation is not refused ``mempool_full``."""
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_txs=2000, max_pending_per_org=1000)
    codes: Counter[str] = Counter()
    for key in PINNERS:
        for nonce in range(1, 257):
            codes[try_add(pool, member_tx(key, nonce))] += 1
    assert try_add(pool, member_tx(HONEST, 0)) == "ok"
    assert codes["ok"] == 1000 == pool.pending_of_org("pinning-traders") == len(pool) - 1
    assert codes["too_many_gapped"] > 0 and codes["org_quota"] > 0
    assert set(codes) == {"ok", "too_many_gapped", "org_quota"}
    assert pool.reap(10_000, 1 << 30) == [member_tx(HONEST, 0)], "nothing pinned is ready"
    assert pool.gapped == 1000
    assert try_add(pool, member_tx(HONEST, 5)) == "ok"  # gapped, but within its own limits


def test_a_refused_org_quota_is_a_429_and_changes_nothing() -> None:
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_pending_per_org=3)
    for nonce in range(3):
        pool.add(member_tx(PINNERS[0], nonce))
    with pytest.raises(MempoolError) as info:
        pool.add(member_tx(PINNERS[1], 0))
    assert (info.value.code, info.value.http_status) == ("org_quota", 429)
    assert len(pool) == 3 and kit.sigs.verifications == 3  # refused before its signature
    assert try_add(pool, member_tx(HONEST, 0)) == "ok"  # other organisations are not touched


def test_gapped_transactions_per_sender_are_capped() -> None:
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_gapped_per_sender=4)
    key = PINNERS[0]
    assert [try_add(pool, member_tx(key, n)) for n in range(2, 8)] == ["ok"] * 4 + [
        "too_many_gapped"
    ] * 2
    with pytest.raises(MempoolError) as info:
        pool.add(member_tx(key, 9))
    assert info.value.http_status == 409 and "send nonce 0 first" in info.value.message
    assert pool.gapped == 4
    assert try_add(pool, member_tx(key, 0)) == "ok"  # ready: always welcome
    assert try_add(pool, member_tx(key, 1)) == "ok"  # closes the gap: 0..5 are ready now
    assert pool.gapped == 0
    assert [try_add(pool, member_tx(key, n)) for n in (6, 8, 9, 10, 11, 12)] == ["ok"] * 5 + [
        "too_many_gapped"
    ]
    assert [tx.nonce for tx in pool.reap(100, 1 << 30)] == list(range(7))


def test_a_full_pool_evicts_a_gapped_transaction_for_a_ready_one() -> None:
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_txs=10)
    for n in range(1, 11):
        pool.add(member_tx(PINNERS[0], n))
    assert try_add(pool, member_tx(HONEST, 0)) == "ok"
    assert try_add(pool, member_tx(HONEST, 3)) == "mempool_full"  # gapped: evicts nothing
    assert len(pool) == 10 and pool.evicted == 1
    assert member_tx(PINNERS[0], 10).hash not in pool  # the farthest nonce went first
    assert pool.gapped == 9 and not pool.full, "a ready transaction still fits"
    assert member_tx(PINNERS[0], 9).hash in pool
    assert pool.reap(100, 1 << 30) == [member_tx(HONEST, 0)]
    for n in range(1, 10):  # honest ready ones keep coming: every gapped one makes way
        assert try_add(pool, member_tx(HONEST, n)) == "ok"
    assert pool.gapped == 0 and pool.full
    assert try_add(pool, member_tx(HONEST, 10)) == "mempool_full"


def test_pending_transactions_expire_by_the_clock_given() -> None:
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, ttl_s=300.0)
    a0, a1, a2 = (member_tx(PINNERS[0], n) for n in range(3))
    pool.add(a0, now=1000.0)
    pool.add(a1, now=1100.0)
    pool.add(a2, now=1200.0)
    assert pool.expire(1299.9) == 0 and len(pool) == 3
    assert pool.expire(1300.0) == 1  # a0 is 300 s old
    assert a0.hash not in pool and pool.expired == 1
    assert pool.gapped == 2 and pool.reap(10, 1 << 30) == []  # a1 and a2 wait behind it now
    pool.add(a0, now=1350.0)  # sent again: the run is whole again
    assert pool.gapped == 0 and pool.reap(10, 1 << 30) == [a0, a1, a2]
    pool.add(member_tx(HONEST, 0), now=1500.0)  # admission expires what is due, too
    assert a1.hash not in pool and a2.hash not in pool and a0.hash in pool
    assert pool.expired == 3


def test_committed_nonces_turn_gapped_transactions_ready() -> None:
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit)
    txs = [member_tx(PINNERS[0], n) for n in range(4)]
    for tx in txs[2:]:
        pool.add(tx)
    assert pool.gapped == 2
    kit.commit(txs[:2])  # nonces 0 and 1 arrived in a block proposed elsewhere
    pool.update(txs[:2])
    assert pool.gapped == 0 and pool.reap(10, 1 << 30) == txs[2:]


# --- cheap checks first, each signature once ----------------------------------------------------


def test_an_unregistered_sender_never_reaches_signature_verification() -> None:
    kit = Kit()
    pool = pool_of(kit)
    junk = [
        Transaction.create(STRANGER, CHAIN, "identity.register_member", n % 200, {"n": n})
        for n in range(300)
    ]
    codes = Counter(try_add(pool, tx) for tx in junk + [forged(tx) for tx in junk[:50]])
    assert codes == Counter({"unknown_sender": 350})
    assert kit.sigs.verifications == 0 and kit.sigs.hits == 0
    assert pool.precheck(junk[0]) is not None and pool.sender_refusal(STRANGER.public_key)


def test_a_bad_signature_is_verified_once() -> None:
    kit = Kit()
    pool = pool_of(kit)
    bad = forged(member_tx(ADMIN, 0, role="auditor"))
    assert try_add(pool, bad) == "bad_signature"
    assert try_add(pool, bad) == "bad_signature"  # sent again: the verdict is remembered
    assert kit.sigs.verifications == 1
    good = member_tx(ADMIN, 0, role="auditor")
    assert try_add(pool, good) == "ok"  # same body, the right signature: not confused
    assert kit.sigs.verifications == 2


def count_handed_over(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many transactions each call hands to the signature worker."""
    handed: list[int] = []
    original = node.signature_worker.check

    async def counting(txs: Sequence[Transaction]) -> None:
        handed.append(len(txs))
        await original(txs)

    monkeypatch.setattr(node.signature_worker, "check", counting)
    return handed


async def test_a_junk_batch_reaches_neither_the_worker_nor_inline_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = make_node()
    handed = count_handed_over(node, monkeypatch)
    penalised: list[str] = []
    monkeypatch.setattr(node.peers, "penalise", lambda p, why: penalised.append(why))
    junk = [
        Transaction.create(STRANGER, CHAIN, "identity.register_member", n % 200, {"n": n})
        for n in range(400)
    ]
    peer = Peer(VALIDATOR_KEYS[1].public_key, "v1", None, True)  # type: ignore[arg-type]
    try:
        results = await node.submit(junk + [forged(tx) for tx in junk[:100]])
        await node.gossip.on_message(peer, TxBatch(tuple(junk[:200])))  # from a peer: the same
    finally:
        node.signature_worker.close()
    assert {r.code for r in results if r is not None} == {"unknown_sender"}
    assert sum(handed) == 0 and node.sigs.verifications == 0 and node.sigs.hits == 0
    assert len(node.mempool) == 0 and penalised == []


async def test_only_what_passes_the_cheap_checks_goes_to_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = make_node()
    handed = count_handed_over(node, monkeypatch)
    good = [member_tx(ADMIN, n, role="auditor") for n in range(20)]
    junk = [
        Transaction.create(STRANGER, CHAIN, "identity.register_member", 0, {"n": n})
        for n in range(30)
    ]
    far = member_tx(ADMIN, 5000, role="auditor")  # outside the nonce window
    try:
        results = await node.submit([*good[:10], *junk, far, forged(good[10]), *good[11:]])
    finally:
        node.signature_worker.close()
    assert handed == [20]  # 19 good and the forged one; neither junk nor the far nonce
    assert node.sigs.verifications == 20 and node.sigs.hits == 20  # each checked once
    codes = Counter(r.code if r else "ok" for r in results)
    assert codes == Counter({"ok": 19, "unknown_sender": 30, "bad_nonce": 1, "bad_signature": 1})


def test_a_signature_cache_keeps_bad_verdicts_bounded() -> None:
    cache = SignatureCache(bad_capacity=4)
    txs = [forged(member_tx(ADMIN, n, role="auditor")) for n in range(6)]
    for tx in txs:
        assert not cache.is_valid(tx)
    assert len(cache._bad) == 4 and not cache.checked(txs[0]) and cache.checked(txs[5])


def test_a_batch_that_closes_a_gap_is_not_refused_before_its_signatures() -> None:
    """The pinning limits of a batch are checked as ``add`` will meet them, in order."""
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_gapped_per_sender=4, max_pending_per_org=9)
    key = PINNERS[0]
    for n in range(5, 9):
        pool.add(member_tx(key, n))
    assert pool.gapped == 4
    batch = [member_tx(key, n) for n in (0, 1, 2, 3, 4, 10)]
    other = member_tx(PINNERS[1], 0)  # the same organisation: over its quota by then
    assert [e.code if e else None for e in pool.precheck_many([*batch, other])] == [
        None,
        None,
        None,
        None,
        None,  # nonces 0-4 close the gap: 0-8 are ready
        "org_quota",  # the 10th pending of the organisation (10 would be gapped: allowed)
        "org_quota",
    ]
    assert [e.code if e else None for e in pool.precheck_many(batch[1:5])] == [
        "too_many_gapped"
    ] * 4  # without nonce 0 they are gapped, and the sender has 4 already
    assert [try_add(pool, tx) for tx in [*batch, other]] == ["ok"] * 5 + ["org_quota"] * 2
    assert kit.sigs.verifications == 9 and pool.gapped == 0


async def test_refused_transactions_are_freed_by_reference_counting() -> None:
    """A refusal is an answer kept in a list; with its traceback (and the error it was
    raised from), the frame that caught it would hold that list and the whole batch in a
    cycle left to the cyclic collector. Both places refuse: the cheap checks before the
    signatures, and the mempool's own add after them."""
    node = make_node()
    good = [member_tx(ADMIN, n, role="auditor") for n in range(3)]
    rival = member_tx(ADMIN, 2, role="trader")  # nonce 2 again: the batch's add decides
    junk = Transaction.create(STRANGER, CHAIN, "identity.register_member", 0, {"n": 0})
    try:
        with cyclic_garbage() as garbage:
            results = await node.submit([*good, rival, junk])
            codes = [r.code if r else "ok" for r in results]
            del results
    finally:
        node.signature_worker.close()
    assert codes == ["ok", "ok", "ok", "bad_nonce", "unknown_sender"]
    assert [o for o in garbage if isinstance(o, MempoolError)] == []


def gate_of(kit: Kit, pool: Mempool) -> Admission:
    worker = SignatureWorker(kit.sigs, CHAIN, processes=0)
    return Admission(pool, worker, Metrics(), lambda: None)


def answer_codes(results: Sequence[MempoolError | None]) -> list[str]:
    return [r.code if r is not None else "ok" for r in results]


async def test_a_sender_refused_not_now_has_its_later_ones_in_the_batch_refused_not_now() -> None:
    """A sender with 257 transactions pending reaches the end of its nonce window: the
    next one is "not now" (``sender_backlog``). The ones after it in the same batch were
    refused ``bad_nonce`` (too far ahead), an answer a client does not send again, and
    every later transaction of the sender was stranded behind that nonce (a client's
    retry carries what its sender held meanwhile: hundreds, in a saturated bench run)."""
    kit = Kit()
    pool = pool_of(kit)
    gate = gate_of(kit, pool)
    window = MAX_NONCE_GAP + 1  # nonces 0..256 from a committed next nonce of 0
    pending = [member_tx(ADMIN, n, role="auditor") for n in range(window)]
    assert await gate.admit(pending, None) == [None] * window
    later = [member_tx(ADMIN, n, role="auditor") for n in range(window, window + 3)]
    results = await gate.admit(later, None, client=True)
    assert answer_codes(results) == ["sender_backlog"] * 3
    assert all(r is not None and r.http_status == 429 for r in results)
    held = results[1]
    assert isinstance(held, RetryLaterError) and held.retry_after_s == SENDER_BACKLOG_RETRY_S
    assert f"nonce {window} of the same sender" in held.message
    assert len(pool) == window  # nothing changed
    kit.commit(pending[:10])
    pool.update(pending[:10])
    assert await gate.admit(later, None, client=True) == [None] * 3  # sent again: all in


async def test_a_refusal_at_add_holds_the_senders_later_ones_of_the_batch() -> None:
    """Refused "not now" by the mempool's add (its bytes are full), the next nonce fitted
    and was admitted behind the gap; with a retry carrying hundreds, the gapped limit then
    refused the rest ``too_many_gapped``. Now none of the sender's later ones is taken,
    and another sender's transactions in the batch are judged on their own."""
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_gapped_per_sender=4)
    gate = gate_of(kit, pool)
    key, other = PINNERS[0], PINNERS[1]
    assert await gate.admit([member_tx(key, 0)], None) == [None]
    big = Transaction.create(
        key, CHAIN, "identity.register_member", 1,
        {"public_key": PrivateKey.from_label("big").public_key, "name": "b" * 100,
         "roles": ["trader"]},
    )  # fmt: skip
    pool.max_bytes = pool.bytes + len(big.body) + 63  # room for a smaller one, not for it
    batch = [big, *(member_tx(key, n) for n in range(2, 9)), member_tx(other, 0)]
    results = await gate.admit(batch, None, client=True)
    assert answer_codes(results) == ["mempool_full"] * 8 + ["ok"]
    assert all(r is not None and r.http_status == 429 for r in results[:8])
    assert pool.gapped == 0 and len(pool) == 2
    pool.max_bytes = DEFAULT_MAX_BYTES
    assert await gate.admit(batch[:8], None, client=True) == [None] * 8  # sent again, in order
    assert pool.gapped == 0 and pool.ready == 10


def pinner_tx(key: int, nonce: int, big: bool) -> Transaction:
    name = ("x" * 90 if big else "s") + str(nonce)
    payload = {"public_key": PINNERS[5].public_key, "name": name, "roles": ["trader"]}
    return Transaction.create(PINNERS[key], CHAIN, "identity.register_member", nonce, payload)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 12), st.booleans()), min_size=1, max_size=24
    ),
    per_org=st.integers(1, 12),
    gapped=st.integers(0, 4),
    room=st.integers(0, 4000),
)
def test_nothing_of_a_sender_is_taken_or_refused_for_good_after_its_refusal_not_now(
    batch: list[tuple[int, int, bool]], per_org: int, gapped: int, room: int
) -> None:
    """Any batch, any limits: once a sender's transaction is refused "not now" (429),
    every later one of that sender in the batch is refused "not now" too, and none of
    them is admitted — a client that sends again what was refused "not now" loses
    nothing to a gap. ``True`` in a step asks for a large payload (refused by bytes)."""
    kit = Kit(genesis=two_org_genesis())
    pool = pool_of(kit, max_gapped_per_sender=gapped, max_pending_per_org=per_org)
    pool.max_bytes = room
    txs = [pinner_tx(k, n, big) for k, n, big in batch]
    results = asyncio.run(gate_of(kit, pool).admit(txs, None, client=True))
    refused_now: set[bytes] = set()
    for i, (tx, result) in enumerate(zip(txs, results, strict=True)):
        if tx.sender in refused_now:
            assert result is not None and result.http_status == 429
            assert tx.hash not in pool or tx in txs[:i]  # pending only by an earlier copy
        elif result is not None and result.http_status == 429:
            refused_now.add(tx.sender)
