"""Every cache and queue of a node that traffic or the chain could grow is bounded: one
test per bound (docs/operations.md, "Memory", lists them; the others' tests are named
there). Each fills the structure past its bound and checks what it holds."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any, cast

import pytest

import node.admission_reads
import node.gossip
import node.mempool
import node.service
from ledger.crypto import PrivateKey
from ledger.state import StateTree
from ledger.tx import Transaction
from ledger.votes import NIL, Vote, VoteType
from node.admission_reads import AdmissionReads
from node.api.answer_cache import AnswerCache
from node.api.metrics import Metrics
from node.consensus.evidence import EvidencePool
from node.consensus.verifier import Verifier
from node.events import BlockPublished, EventHub
from node.gossip import Gossip
from node.service import Queries
from node.sigcache import SignatureCache
from tests.unit.node.api.conftest import TestNode, build_standard_chain, milestone
from tests.unit.node.chainkit import CHAIN, Kit, certify, register_member_tx

SIGNER = PrivateKey.from_label("memory-bounds")


def _txs(n: int) -> list[Transaction]:
    return [Transaction.create(SIGNER, CHAIN, "identity.noop", i, {"n": i}) for i in range(n)]


def test_the_signature_cache_holds_capacity_digests_of_under_200_bytes() -> None:
    cache = SignatureCache(capacity=2000, bad_capacity=10)
    txs = _txs(2500)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for tx in txs[:2000]:
        cache.add(tx)
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / 2000
    tracemalloc.stop()
    assert per_entry < 200, f"{per_entry:.0f} bytes an entry"
    for tx in txs[2000:]:
        cache.add(tx)
    assert len(cache) == 2000
    assert txs[0] not in cache and txs[499] not in cache and txs[500] in cache
    for tx in txs[:20]:
        cache.add_bad(tx)
    assert len(cache) == 2010


def test_the_consensus_verifier_keeps_max_entries_verdicts() -> None:
    verifier = Verifier(CHAIN, max_entries=50)
    votes = [Vote.create(SIGNER, CHAIN, VoteType.PREVOTE, 1, r, NIL) for r in range(80)]
    assert all(verifier.is_valid(v) for v in votes)
    assert len(verifier) == 50
    assert verifier.is_valid(votes[-1]) and verifier.hits == 1


def test_the_consensus_verifier_drops_the_oldest_first_and_forgets_below() -> None:
    verifier = Verifier(CHAIN, max_entries=6)
    votes = {
        h: [Vote.create(SIGNER, CHAIN, VoteType.PREVOTE, h, r, NIL) for r in range(3)]
        for h in (9, 3, 4)
    }
    for h in (9, 3, 4):  # a far-future height's first: out first, though highest
        assert all(verifier.is_valid(v) for v in votes[h])
    assert len(verifier) == 6
    hits = verifier.hits
    assert all(verifier.is_valid(v) for v in votes[3] + votes[4])
    assert verifier.hits == hits + 6  # 3 and 4 kept, 9 dropped
    verifier.forget_below(4)
    assert len(verifier) == 3
    assert verifier.is_valid(votes[3][0]) and verifier.hits == hits + 6  # asked again: checked
    assert len(verifier) == 4


def test_an_unread_event_subscription_holds_at_most_its_transactions() -> None:
    kit = Kit()
    blocks = [kit.commit([register_member_tx(i, f"e{i}", ["clerk"])]).block for i in range(4)]
    big = kit.commit([register_member_tx(4 + i, f"b{i}", ["clerk"]) for i in range(3)]).block
    hub = EventHub()
    sub = hub.subscribe()
    sub.max_txs = 3
    for block in blocks:
        hub.publish(BlockPublished(block, ()))
    assert sub.queue.qsize() == 3 and sub.queue.txs == 3 and sub.dropped == 1
    hub.publish(BlockPublished(big, ()))  # three transactions: everything older goes
    assert sub.queue.qsize() == 1 and sub.queue.txs == 3 and sub.dropped == 4
    assert sub.queue.get_nowait().block is big and sub.queue.txs == 0


def test_the_proof_cache_is_bounded_in_heights_and_transactions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kit = Kit()
    for b in range(5):
        kit.commit([register_member_tx(3 * b + i, f"p{b}-{i}", ["clerk"]) for i in range(3)])
    monkeypatch.setattr(node.service, "PROOF_CACHE_TXS", 7)
    queries = Queries(kit.chain)
    for height in range(1, 6):
        queries.block_proofs(height)
    assert list(queries._proofs) == [4, 5] and queries._proof_txs == 6
    monkeypatch.setattr(node.service, "PROOF_CACHE_TXS", 10**6)
    monkeypatch.setattr(node.service, "PROOF_CACHE_HEIGHTS", 3)
    for height in range(1, 6):
        queries.block_proofs(height)
    assert list(queries._proofs) == [3, 4, 5]


def test_admissions_cached_state_reads_are_bounded_in_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node.admission_reads, "READ_CACHE_BYTES", 5000)
    kit = Kit()
    reads = AdmissionReads(lambda: StateTree(kit.store, kit.chain.head().state_root))
    for i in range(200):
        reads.get(f"member/{i}".encode())
        assert 0 < reads.cached_bytes <= 5000
    assert 0 < len(reads._values) < 200


def test_admissions_cached_nonces_are_bounded_in_senders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.admission_reads, "NONCE_CACHE_SENDERS", 50)
    kit = Kit()
    reads = AdmissionReads(lambda: StateTree(kit.store, kit.chain.head().state_root))
    for i in range(200):  # the 51st sender empties the cache, and is then cached itself
        assert reads.next_nonce(b"sender-%03d" % i) == 0
        assert 0 < reads.cached_senders <= 50


def test_gossip_remembers_at_most_max_seen_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.gossip, "MAX_SEEN", 100)
    kit = Kit()
    gossip = Gossip(cast(Any, None), kit.genesis, kit.chain, EvidencePool(kit.store), Metrics())
    frames = [f"frame {i}".encode() for i in range(150)]
    assert all(gossip.mark_seen(f) for f in frames)
    assert len(gossip._seen) == 100
    assert not gossip.frame_seen(frames[49]) and gossip.frame_seen(frames[50])


def test_gossip_forgets_a_frame_seen_more_than_a_minute_ago() -> None:
    """At a low rate the count bound would keep a quarter of an hour of frames: a frame
    is remembered for SEEN_FOR_S seconds only, so the memory follows the traffic."""
    kit = Kit()
    gossip = Gossip(cast(Any, None), kit.genesis, kit.chain, EvidencePool(kit.store), Metrics())
    now = [1000.0]
    gossip.clock = lambda: now[0]
    for i in range(600):  # ten frames a second for a minute
        now[0] = 1000.0 + i / 10  # each time computed, not summed: no rounding drift
        assert gossip.mark_seen(b"frame %d" % i)
    assert len(gossip._seen) == 600 and gossip.frame_seen(b"frame 0")
    assert not gossip.mark_seen(b"frame 0")  # a copy within the minute: dropped
    now[0] = 1065.0  # frame 50 came at 1005.0, exactly a minute before: still kept
    assert gossip.mark_seen(b"frame 600")
    assert not gossip.frame_seen(b"frame 0") and gossip.frame_seen(b"frame 60")
    assert len(gossip._seen) == 600 - 50 + 1  # the frames of the first 5 s are gone
    now[0] += 61.0
    assert gossip.mark_seen(b"frame 601")
    assert list(gossip._seen.values()) == [now[0]]  # only the newest: the rest expired
    assert gossip.mark_seen(b"frame 0")  # forgotten: taken (and handled) again


def test_the_rendered_answer_cache_is_bounded_in_bytes() -> None:
    cache = AnswerCache(max_bytes=4000)
    for i in range(10):
        cache.put(i, bytes(900))
    assert cache.size == 3600 and len(cache) == 4 and cache.get(5) is None
    cache.put("big", bytes(1001))  # over a quarter of the budget: not kept
    assert cache.get("big") is None and cache.size <= 4000


def test_executed_blocks_awaiting_commit_are_at_most_eight_and_go_at_commit() -> None:
    kit = Kit()
    head = kit.chain.head()
    proposer = kit.genesis.validators.validators[0].public_key
    built = [kit.executor.build_block([], head.time_ms + 1 + i, proposer, None) for i in range(11)]
    assert len({b.block.hash for b in built}) == 11
    assert len(kit.executor._executed) == 8
    assert kit.executor.executed(built[2].block.hash) is None
    kit.executor.commit(built[-1], certify(built[-1].block))
    assert len(kit.executor._executed) == 0


def test_committed_transactions_leave_the_signature_cache() -> None:
    node = TestNode()
    build_standard_chain(node)
    txs = [milestone(node, place) for place in ("NLRTM", "NLAMS", "BEANR")]
    for tx in txs:
        node.mempool.add(tx)
    assert all(tx in node.sigs for tx in txs)  # admission checked and kept each verdict
    node.commit(txs[:2])
    assert [tx in node.sigs for tx in txs] == [False, False, True]  # the pending one stays
