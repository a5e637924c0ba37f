"""Throughput of the consensus core on one CPU core.

``run()`` measures:

* ``core_votes_per_s_n4`` / ``_n7`` — pre-verified vote events per second through
  the state machine (an observer core: nothing of its own to sign), over many
  heights: per height one proposal, 2n votes, one commit with its certificate and
  the move to the next height; all of it is in the timing, only votes are counted;
* ``validator_votes_per_s_n4`` / ``_n7`` — the same for a validator core, which
  also signs (Ed25519) and durably records (memory store) its own three messages
  per height;
* ``vote_verifications_per_s`` — Ed25519 vote signature checks (cache misses) by a
  :class:`~node.consensus.verifier.Verifier`, the step kept off the hot path.

Run ``python -m benchmarks.consensus_bench`` to print them; ``make bench-core`` includes them.
"""

from __future__ import annotations

import hashlib
import time

from ledger.crypto import PrivateKey
from ledger.storage import MemoryStore
from ledger.validators import Validator, ValidatorSet
from ledger.votes import Proposal, Vote, VoteType
from node.consensus.core import ConsensusCore
from node.consensus.signer import Signer
from node.consensus.timeouts import TimeoutConfig
from node.consensus.verifier import Verifier

CHAIN_ID = "bench-chain"
KEYS = [PrivateKey.from_label(f"bench-validator-{i}") for i in range(7)]

Height = tuple[Proposal, bytes, list[Vote]]


def _validators(n: int) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(f"b{i}", KEYS[i].public_key, 1) for i in range(n)))


def _messages(validators: ValidatorSet, heights: int, skip: bytes | None) -> list[Height]:
    """Signed proposal and votes for each height (signing is not timed)."""
    by_key = {k.public_key: k for k in KEYS}
    out: list[Height] = []
    for h in range(1, heights + 1):
        block = hashlib.sha256(h.to_bytes(8, "big")).digest()
        proposer = by_key[validators.proposer(h, 0)]
        proposal = Proposal.create(proposer, CHAIN_ID, h, 0, block, -1)
        votes = [
            Vote.create(by_key[v.public_key], CHAIN_ID, kind, h, 0, block)
            for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT)
            for v in validators.validators
            if v.public_key != skip
        ]
        out.append((proposal, block, votes))
    return out


def _core_votes_per_s(n: int, heights: int, *, validator: bool) -> float:
    validators = _validators(n)
    signer = Signer(KEYS[0], CHAIN_ID, MemoryStore()) if validator else None
    skip = KEYS[0].public_key if validator else None
    messages = _messages(validators, heights, skip)
    core = ConsensusCore(
        chain_id=CHAIN_ID, validators=validators, signer=signer, timeouts=TimeoutConfig()
    )
    core.start()
    count = 0
    started = time.perf_counter()
    for h, (proposal, block, votes) in enumerate(messages, start=1):
        if proposal.proposer != core.public_key:
            core.on_validation_result(h, block, True)  # the layer answers at once
            core.on_proposal(proposal, verified=True)
        else:
            core.on_value_ready(h, 0, block)
        for vote in votes:
            core.on_vote(vote, verified=True)
        count += len(votes)
        core.on_block_committed(h)
    elapsed = time.perf_counter() - started
    assert core.height == heights + 1 and core.counters["commits"] == heights
    return count / elapsed


def _verifications_per_s(count: int) -> float:
    block = hashlib.sha256(b"verify").digest()
    votes = [
        Vote.create(KEYS[i % 7], CHAIN_ID, VoteType.PREVOTE, 1 + i // 7, 0, block)
        for i in range(count)
    ]
    verifier = Verifier(CHAIN_ID)
    started = time.perf_counter()
    for vote in votes:
        verifier.verify(vote)
    elapsed = time.perf_counter() - started
    assert verifier.misses == count
    return count / elapsed


def run() -> dict[str, float]:
    """Vote events/s through the core (n = 4 and 7) and vote verifications/s."""
    return {
        "core_votes_per_s_n4": _core_votes_per_s(4, 1500, validator=False),
        "core_votes_per_s_n7": _core_votes_per_s(7, 1000, validator=False),
        "validator_votes_per_s_n4": _core_votes_per_s(4, 1000, validator=True),
        "validator_votes_per_s_n7": _core_votes_per_s(7, 700, validator=True),
        "vote_verifications_per_s": _verifications_per_s(3000),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:<28} {value:>12,.0f}")
