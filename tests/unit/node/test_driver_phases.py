"""The driver's marks of a height's phases (node/height_phases.py) at a validator that
is not the proposer: the proposal's arrival counts from when it came, before the core
validated it and prevoted (which happens while the proposal is being handled)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ledger.storage import MemoryStore
from ledger.votes import VoteType
from node import startup
from node.consensus.signer import Signer
from node.wire import ProposalMsg
from tests.unit.node.chainkit import CHAIN, GENESIS, VALIDATOR_KEYS, Kit, make_node, proposer_index

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT


def test_a_validator_measures_the_phases_of_a_height_another_proposed(tmp_path: Path) -> None:
    first = proposer_index(1, 0)
    me = (first + 1) % 4
    others = [i for i in range(4) if i != me]
    signers = {i: Signer(VALIDATOR_KEYS[i], CHAIN) for i in others}
    block = (
        Kit(genesis=GENESIS)
        .executor.build_block([], int(time.time() * 1000), VALIDATOR_KEYS[first].public_key, None)
        .block
    )

    async def main() -> None:
        node = make_node(
            VALIDATOR_KEYS[me], MemoryStore(), signer_state=str(tmp_path / "signer.msgpack")
        )
        node.gossip.status_from |= {k.public_key for k in VALIDATOR_KEYS}
        await startup.start_consensus(node)
        node.driver.on_proposal(
            ProposalMsg(signers[first].sign_proposal(1, 0, block.hash, -1), block)
        )
        for i in [i for i in others if i != first][:2]:
            node.driver.on_vote(signers[i].sign_vote(PREVOTE, 1, 0, block.hash))
        for i in [i for i in others if i != first][:2]:
            node.driver.on_vote(signers[i].sign_vote(PRECOMMIT, 1, 0, block.hash))
        assert node.chain.head().height == 1
        phases = node.driver.last_phases
        assert phases is not None, "the height was not measured"
        assert set(phases) == {"propose", "validate", "prevotes", "precommits"}  # no build
        assert all(seconds >= 0 for seconds in phases.values())
        node.driver._cancel_timers()

    asyncio.run(main())
