"""Four real validator nodes in one process, linked over loopback:
a double vote shown to one node only ends up committed in a block, once, and every
node's ``/v1/evidence`` lists it as committed, with a header and certificate that
check out."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ledger.block import BlockHeader
from ledger.encoding import decode
from ledger.evidence import DuplicateVoteEvidence, evidence_from_obj
from ledger.votes import NIL, CommitCertificate, Vote, VoteType
from node.peers import Peer
from node.wire import VoteMsg
from tests.unit.node.chainkit import CHAIN, GENESIS, VALIDATOR_KEYS, wait_for
from tests.unit.node.meshkit import api_url, mesh, running

OFFENDER = 3  # its key signs two prevotes; its node stays honest otherwise


async def _evidence(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url + "/v1/evidence", headers={"Accept": "application/msgpack"}) as r:
        assert r.status == 200
        return decode(await r.read())


def test_a_double_vote_seen_by_one_node_is_committed_and_listed_by_every_node() -> None:
    nodes = mesh(GENESIS, VALIDATOR_KEYS, prefix="v")
    urls = [api_url(node) for node in nodes]

    async def main() -> None:
        async with running(nodes), aiohttp.ClientSession() as session:
            await run(session)

    async def run(session: aiohttp.ClientSession) -> None:
        async def committed_height_2() -> bool:
            return all(node.chain.head().height >= 2 for node in nodes)

        await wait_for("every node to commit block 2", 60, committed_height_2)
        # The equivocation: two prevotes of one key at node 0's height, shown to node 0.
        target = nodes[0]
        height = target.core.height
        key = VALIDATOR_KEYS[OFFENDER]
        votes = [
            Vote.create(key, CHAIN, VoteType.PREVOTE, height, 0, value)
            for value in (NIL, b"\x5a" * 32)
        ]
        sender = Peer(
            key=key.public_key,
            name="v3-link",
            ws=None,  # type: ignore[arg-type]
            dialed_by_us=True,
        )
        for vote in votes:
            await target.gossip.on_message(sender, VoteMsg(vote))
        assert any(e.offender == key.public_key for e in target.evidence_pool.items())
        found_at = target.chain.head().height

        answers: list[Any] = []

        async def listed_everywhere() -> bool:
            answers[:] = [await _evidence(session, url) for url in urls]
            return all(
                any(e["status"] == "committed" for e in answer["evidence"]) for answer in answers
            )

        await wait_for(
            "the evidence to be committed and listed by every node", 60, listed_everywhere
        )
        for node, answer in zip(nodes, answers, strict=True):
            committed = [e for e in answer["evidence"] if e["status"] == "committed"]
            assert len(committed) == 1, (node.config.name, committed)  # once, in one block
            item = committed[0]
            evidence = evidence_from_obj(item["evidence"])
            assert isinstance(evidence, DuplicateVoteEvidence)
            assert evidence.offender == item["offender"] == key.public_key
            assert evidence.height == item["offence_height"] >= height - 1
            evidence.verify(CHAIN, GENESIS.validators)
            assert item["height"] > found_at - 1
            [entry] = answer["blocks"]
            header = BlockHeader.from_obj(entry["header"])
            CommitCertificate.from_obj(entry["certificate"]).verify(
                GENESIS.validators, CHAIN, height=header.height, block_hash=header.hash
            )
            block = node.chain.block(header.height)
            assert block is not None and block.evidence == (evidence,)
            assert not [e for e in answer["evidence"] if e["status"] == "pending"]
        # the pools are empty again, and the chain goes on
        assert all(len(node.evidence_pool) == 0 for node in nodes)

    asyncio.run(main())
