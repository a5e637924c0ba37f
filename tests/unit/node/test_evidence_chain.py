"""Equivocation evidence on the chain: blocks commit verified
evidence under the header's evidence root, once per offence, within an age window;
the proposer offers the pool's pending pieces oldest first; a validator prevotes nil on
a proposal whose evidence is forged, already committed, repeated or out of the window;
evidence is gossiped once, verified before it is pooled or relayed."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from ledger import evidence as ledger_evidence
from ledger.block import Block, decode_header
from ledger.crypto import PrivateKey
from ledger.encoding import encode
from ledger.errors import DecodeError
from ledger.evidence import (
    MAX_BLOCK_EVIDENCE,
    ConflictingProposalEvidence,
    DuplicateVoteEvidence,
    Evidence,
    compute_evidence_root,
)
from ledger.storage import MemoryStore, keys
from ledger.storage.protocol import WriteBatch
from ledger.votes import NIL, Proposal, Vote, VoteType
from node.consensus.evidence import EvidencePool
from node.executor import ExecutedBlock, InvalidBlock, InvalidEvidence
from node.peers import Peer
from node.runtime import Node
from node.wire import EvidenceMsg, ProposalMsg, VoteMsg, decode_message, encode_message
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

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
A, B, C = (hashlib.sha256(x).digest() for x in (b"A", b"B", b"C"))


def double_vote(
    i: int, height: int, round_: int = 0, *, kind: VoteType = PREVOTE, other: bytes = B
) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.of(
        Vote.create(VALIDATOR_KEYS[i], CHAIN, kind, height, round_, A),
        Vote.create(VALIDATOR_KEYS[i], CHAIN, kind, height, round_, other),
    )


def proposer_key(height: int, round_: int) -> PrivateKey:
    return VALIDATOR_KEYS[proposer_index(height, round_)]


def conflicting_proposals(height: int, round_: int = 0) -> ConflictingProposalEvidence:
    key = proposer_key(height, round_)
    return ConflictingProposalEvidence.of(
        Proposal.create(key, CHAIN, height, round_, A, -1),
        Proposal.create(key, CHAIN, height, round_, B, -1),
    )


def forged(evidence: DuplicateVoteEvidence) -> DuplicateVoteEvidence:
    """The same two votes, the second one's signature replaced: not signed by anyone."""
    b = evidence.vote_b
    return DuplicateVoteEvidence(
        evidence.vote_a, Vote(b.type, b.height, b.round, b.block_hash, b.validator, bytes(64))
    )


def kit_at(height: int, store: MemoryStore | None = None) -> Kit:
    kit = Kit(store=store if store is not None else MemoryStore(), genesis=GENESIS)
    for _ in range(height):
        kit.commit([])
    return kit


def commit(kit: Kit, evidence: list[Evidence]) -> ExecutedBlock:
    head = kit.chain.head()
    last = kit.chain.certificate(head.height) if head.height else None
    executed = kit.executor.build_block(
        [], head.time_ms + 1000, VALIDATOR_KEYS[0].public_key, last, evidence
    )
    kit.executor.commit(executed, certify(executed.block))
    return executed


def unchecked_block(kit: Kit, evidence: list[Evidence], proposer: int = 0) -> Block:
    """A block carrying exactly ``evidence``, as a byzantine proposer would build it."""
    head = kit.chain.head()
    last = kit.chain.certificate(head.height) if head.height else None
    executed = kit.executor._execute(
        head, (), head.time_ms + 1000, VALIDATOR_KEYS[proposer].public_key, last, tuple(evidence)
    )
    return executed.block


# --- the block format -----------------------------------------------------------------------


def test_a_block_commits_its_evidence_under_the_evidence_root() -> None:
    kit = kit_at(2)
    pieces: list[Evidence] = [double_vote(3, 2), conflicting_proposals(1, 1)]
    block = commit(kit, pieces).block
    assert block.evidence == tuple(pieces)
    assert block.header.evidence_root == compute_evidence_root(pieces)
    assert block.encode() == encode(block.to_obj())
    assert Block.decode(block.encode()) == block
    assert decode_header(block.encode()) == block.header
    assert kit.chain.header(block.height) == block.header
    empty = kit.chain.block(1)
    assert empty is not None and empty.evidence == ()
    assert empty.header.evidence_root == hashlib.sha256(b"").digest()
    # the evidence index: by block, and by offence (written with the block)
    assert kit.chain.committed_evidence() == [(3, pieces)]
    assert [kit.chain.offence_location(p) for p in pieces] == [(3, 0), (3, 1)]
    assert kit.store.get(keys.committed_evidence_key(3, 1)) == encode(pieces[1].to_obj())


def test_a_block_with_too_much_evidence_does_not_decode() -> None:
    kit = kit_at(1)
    obj = unchecked_block(kit, []).to_obj()
    obj["evidence"] = [double_vote(i % 4, 1, r).to_obj() for i, r in enumerate(range(17))]
    with pytest.raises(DecodeError, match=r"block\.evidence"):
        Block.from_obj(obj)
    with pytest.raises(DecodeError):
        decode_message(encode({"t": "proposal", "b": {"proposal": {}, "block": obj}}), 1 << 24)


def test_a_second_signature_over_the_same_proposal_is_no_evidence() -> None:
    key = proposer_key(1, 0)
    p = Proposal.create(key, CHAIN, 1, 0, A, -1)
    resigned = Proposal(p.height, p.round, p.block_hash, p.valid_round, p.proposer, bytes(64))
    with pytest.raises(ledger_evidence.EvidenceError):
        ConflictingProposalEvidence.of(p, resigned)
    key = proposer_key(2, 1)  # the same block in two valid rounds: two different proposals
    ConflictingProposalEvidence.of(
        Proposal.create(key, CHAIN, 2, 1, A, -1), Proposal.create(key, CHAIN, 2, 1, A, 0)
    ).verify(CHAIN, GENESIS.validators)


# --- the proposer -----------------------------------------------------------------------


def test_the_proposer_commits_pending_evidence_once_oldest_first_and_bounded() -> None:
    kit = kit_at(5)
    pool = EvidencePool(max_per_offender=100)
    pieces = [double_vote(i % 4, 5 - i % 5, i // 4, kind=PREVOTE) for i in range(20)]
    for piece in reversed(pieces):
        assert pool.add(piece)
    offered = pool.pending(kit.chain.evidence_committed, 6)
    assert len(offered) == MAX_BLOCK_EVIDENCE
    assert [e.height for e in offered] == sorted(e.height for e in offered)
    block = commit(kit, offered).block
    assert block.evidence == tuple(offered)
    rest = pool.pending(kit.chain.evidence_committed, 7)
    assert {e.offence for e in rest} == {e.offence for e in pieces} - {e.offence for e in offered}
    # all twenty on offer again: only the four not yet committed go in
    again = commit(kit, pieces).block
    assert {e.offence for e in again.evidence} == {e.offence for e in rest}
    pool.committed(block.evidence + again.evidence)
    assert len(pool) == 0


def test_the_proposer_leaves_out_what_it_may_not_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    kit = kit_at(6)
    commit(kit, [double_vote(1, 2)])  # block 7
    monkeypatch.setattr(ledger_evidence, "MAX_EVIDENCE_AGE", 4)
    outsider = PrivateKey.from_label("not-a-validator")
    candidates: list[Evidence] = [
        forged(double_vote(0, 5)),  # a bad signature
        double_vote(1, 2, other=C),  # an offence already committed (another pair of votes)
        double_vote(2, 8),  # the height of the block itself
        double_vote(2, 3),  # older than 8 - 4
        DuplicateVoteEvidence.of(
            Vote.create(outsider, CHAIN, PREVOTE, 6, 0, A),
            Vote.create(outsider, CHAIN, PREVOTE, 6, 0, B),
        ),  # not a validator
        ConflictingProposalEvidence(  # signed by a validator that was not the proposer
            *sorted(
                (
                    Proposal.create(VALIDATOR_KEYS[i], CHAIN, 6, 0, h, -1)
                    for i, h in ((3, A), (3, B))
                    if VALIDATOR_KEYS[i] != proposer_key(6, 0)
                ),
                key=lambda p: p.block_hash,
            )
        ),
        double_vote(3, 6),  # fine
        double_vote(3, 6, other=C),  # the same offence again
    ]
    block = commit(kit, candidates).block
    assert block.evidence == (candidates[6],)


# --- validators: nil for a block with evidence it may not commit --------------------------------


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("forged", "bad signature"),
        ("committed", "already committed at height 3"),
        ("twice", "repeats this offence"),
        ("future", "cannot be committed before height"),
        ("old", "too old"),
        ("not proposer", "not the proposer"),
    ],
)
def test_a_block_with_bad_evidence_is_invalid(
    case: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = kit_at(2)
    commit(kit, [double_vote(1, 2)])  # block 3
    commit(kit, [])  # block 4
    monkeypatch.setattr(ledger_evidence, "MAX_EVIDENCE_AGE", 3)
    good = double_vote(2, 4)
    bad: Evidence = {
        "forged": forged(double_vote(0, 3)),
        "committed": double_vote(1, 2, other=C),
        "twice": double_vote(2, 4, other=C),
        "future": double_vote(0, 5),
        "old": double_vote(0, 1),
        "not proposer": ConflictingProposalEvidence.of(
            *(
                Proposal.create(next(k for k in VALIDATOR_KEYS if k != proposer_key(3, 0)),
                                CHAIN, 3, 0, h, -1)
                for h in (A, B)
            )
        ),
    }[case]  # fmt: skip
    block = unchecked_block(kit, [good, bad])
    with pytest.raises(InvalidEvidence, match=problem) as caught:
        kit.executor.validate_block(block, None)
    assert caught.value.index == 1 and caught.value.evidence == bad
    assert "evidence 1 (" in str(caught.value)


def test_a_block_whose_evidence_root_does_not_match_is_invalid() -> None:
    kit = kit_at(3)
    listed = unchecked_block(kit, [double_vote(2, 2)])
    other = unchecked_block(kit, [double_vote(3, 2)])
    swapped = Block(listed.header, listed.txs, listed.last_cert, other.evidence)
    with pytest.raises(InvalidBlock, match="evidence_root does not match"):
        kit.executor.validate_block(swapped, None)
    kit.executor.validate_block(listed, None)  # the honest one is fine


# --- through a validator node: its prevote ------------------------------------------------------


def the_prevote(node: Node, height: int) -> Vote:
    [vote] = [
        m.vote
        for m in node.driver.own_messages
        if isinstance(m, VoteMsg) and m.vote.type == PREVOTE and m.vote.height == height
    ]
    return vote


@pytest.mark.parametrize("case", ["forged", "duplicate", "good"])
def test_a_validator_prevotes_nil_on_a_proposal_with_forged_or_duplicate_evidence(
    case: str,
) -> None:
    store = MemoryStore()
    kit = kit_at(2, store)
    commit(kit, [double_vote(1, 2)])  # block 3 commits an offence
    height = 4
    piece = {
        "forged": forged(double_vote(2, 3)),
        "duplicate": double_vote(1, 2, other=C),  # already committed, another pair of votes
        "good": double_vote(2, 3),
    }[case]
    proposer = proposer_key(height, 0)
    voter = next(k for k in VALIDATOR_KEYS if k != proposer)
    builder = Kit(store=MemoryStore(), genesis=GENESIS)
    for h in range(1, height):
        b = kit.chain.block(h)
        cert = kit.chain.certificate(h)
        assert b is not None and cert is not None
        builder.executor.commit(builder.executor.validate_block(b, None), cert)
    block = unchecked_block(builder, [piece], VALIDATOR_KEYS.index(proposer))
    proposal = Proposal.create(proposer, CHAIN, height, 0, block.hash, -1)

    async def main() -> Vote:
        node = make_node(voter, store)
        assert node.core.height == height
        node.consensus_started = True
        node.driver.start()
        await node.gossip.on_message(
            fake_peer(VALIDATOR_KEYS.index(proposer)), ProposalMsg(proposal, block)
        )
        return the_prevote(node, height)

    prevote = asyncio.run(main())
    assert prevote.block_hash == (block.hash if case == "good" else NIL)


# --- gossip -------------------------------------------------------------------------------------


def linked_node_at(height: int) -> tuple[Node, list[Peer]]:
    """Validator 0's node on a chain ``height`` blocks long, with socketless links to the
    three other validators."""
    store = MemoryStore()
    kit_at(height, store)
    node = make_node(store=store)
    peers = [fake_peer(i) for i in (1, 2, 3)]
    for p in peers:
        node.peers.peers[p.key] = p
    return node, peers


def test_evidence_is_verified_pooled_and_relayed_once(tmp_path: Path) -> None:
    async def main() -> None:
        node, peers = linked_node_at(3)
        penalised: list[tuple[str, str]] = []
        node.peers.penalise = lambda peer, why: penalised.append((peer.name, why))  # type: ignore[method-assign]

        good = EvidenceMsg(double_vote(3, 3))
        await node.gossip.on_message(peers[0], good)
        assert node.evidence_pool.items() == [good.evidence]
        assert sent(peers[0]) == []  # not back to the sender
        assert sent(peers[1]) == sent(peers[2]) == [encode_message(good)]
        assert node.gossip.frame_seen(encode_message(good))  # a relayed copy is dropped undecoded
        assert node.evidence() == [good.evidence.to_obj()]

        # the same offence again (another pair of votes): neither verified nor relayed
        await node.gossip.on_message(peers[1], EvidenceMsg(double_vote(3, 3, other=C)))
        assert len(node.evidence_pool) == 1 and not any(sent(p) for p in peers)

        # forged: the sender is penalised, nothing is kept or relayed
        await node.gossip.on_message(peers[1], EvidenceMsg(forged(double_vote(2, 3))))
        assert [name for name, _ in penalised] == ["v2"]
        assert "does not verify" in penalised[0][1]
        assert len(node.evidence_pool) == 1 and not any(sent(p) for p in peers)

        # too old, or far in this node's future: dropped, the sender not blamed
        far = EvidenceMsg(double_vote(2, 50))
        await node.gossip.on_message(peers[1], far)
        assert len(node.evidence_pool) == 1 and len(penalised) == 1

        # once a block commits it, it leaves the pool; a late copy is not taken again
        executed = node.executor.build_block(
            [], node.chain.head().time_ms + 1000, VALIDATOR_KEYS[0].public_key,
            node.chain.certificate(3), node.pending_evidence(4),
        )  # fmt: skip
        assert executed.block.evidence == (good.evidence,)
        node.executor.commit(executed, certify(executed.block))
        node.committed(executed.block, 0.1)
        assert len(node.evidence_pool) == 0 and node.evidence() == []
        node.gossip._seen.clear()
        await node.gossip.on_message(peers[2], good)
        assert len(node.evidence_pool) == 0

    asyncio.run(main())


def test_evidence_the_core_finds_is_gossiped_to_every_peer() -> None:
    async def main() -> None:
        node, peers = linked_node_at(1)
        node.consensus_started = True
        node.driver.start()
        for p in peers:
            sent(p)
        height = node.core.height
        a = Vote.create(VALIDATOR_KEYS[3], CHAIN, PREVOTE, height, 0, NIL)
        b = Vote.create(VALIDATOR_KEYS[3], CHAIN, PREVOTE, height, 0, A)
        await node.gossip.on_message(peers[2], VoteMsg(a))
        await node.gossip.on_message(peers[2], VoteMsg(b))
        [found] = node.evidence_pool.items()
        assert found == DuplicateVoteEvidence.of(a, b)
        frame = encode_message(EvidenceMsg(found))
        for p in peers:
            assert frame in sent(p)

    asyncio.run(main())


def test_the_pool_keeps_a_few_pending_pieces_per_offender() -> None:
    pool = EvidencePool(max_per_offender=2)
    assert pool.add(double_vote(1, 2)) and pool.add(double_vote(1, 3))
    assert not pool.wants(double_vote(1, 4)) and not pool.add(double_vote(1, 4))
    assert pool.add(double_vote(2, 4))
    pool.committed([double_vote(1, 2, other=C)])  # the same offence, committed
    assert pool.add(double_vote(1, 4))
    assert [e.height for e in pool.items()] == [3, 4, 4]


def test_a_state_synced_node_does_not_vote_for_evidence_older_than_its_base() -> None:
    """Joined by state sync at height 5, a node has no offence index before it: it cannot
    tell whether an offence of height 2 was committed at height 3, so it neither proposes
    nor prevotes for a block carrying it; a certified one it takes (the validators judged
    it), and offences from its base on it judges as any node."""
    kit = kit_at(6)
    batch = WriteBatch()
    batch.put(keys.STATE_BASE, (5).to_bytes(8, "big"))
    kit.store.write(batch)
    assert kit.chain.base_height() == 5
    old, recent = double_vote(1, 2), double_vote(2, 5)
    block = unchecked_block(kit, [recent, old])
    with pytest.raises(InvalidEvidence, match="joined by state sync at height 5") as caught:
        kit.executor.validate_block(block, None)
    assert caught.value.index == 1
    assert kit.executor.validate_block(block, None, certified=True).block == block
    assert kit.executor.admissible_evidence([old, recent], 7) == (recent,)
