"""Blocks, certificates, validators, status, evidence and the checkpoint."""

from __future__ import annotations

from ledger.block import Block, BlockHeader
from ledger.evidence import DuplicateVoteEvidence
from ledger.merkle import root_of
from ledger.tx import Transaction
from ledger.votes import CommitCertificate, Vote, VoteType
from tests.unit.node.api.conftest import (
    BLOCK_MS,
    CHAIN_ID,
    GENESIS_TIME,
    VALIDATORS,
    Client,
    Clock,
    Scenario,
    TestNode,
    assert_error,
    certify,
    check_certified,
    get_obj,
    signed,
)


async def test_block_by_height_verifies(client: Client, node: TestNode, clock: Clock) -> None:
    status, answer = await get_obj(client, "/v1/blocks/3", signed("auditor", "/v1/blocks/3", clock))
    assert status == 200 and answer["redacted"] == []
    block = Block.from_obj(answer["block"])
    block.check_tx_root()
    assert block.hash == answer["hash"] == node.header(3).hash
    cert = CommitCertificate.from_obj(answer["certificate"])
    cert.verify(node.genesis.validators, CHAIN_ID, height=3, block_hash=block.hash)
    # block 3 carries the certificate of block 2, which links to block 2's hash
    assert block.last_cert is not None and block.last_cert.block_hash == node.header(2).hash


async def test_latest_block_is_the_head(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/blocks/latest")
    assert status == 200
    assert answer["height"] == node.chain.head().height == 9


async def test_block_json_renders_bytes_as_hex(client: Client, node: TestNode) -> None:
    response = await client.get("/v1/blocks/1")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["hash"] == node.header(1).hash.hex()
    assert body["block"]["header"]["height"] == 1
    assert body["block"]["last_cert"] is None


async def test_unknown_block_is_404(client: Client) -> None:
    for path in ("/v1/blocks/10", "/v1/blocks/0", "/v1/blocks/9223372036854775807"):
        response = await client.get(path)
        await assert_error(response, 404, "not_found")


async def test_bad_height_is_400(client: Client) -> None:
    for path in (
        "/v1/blocks/-1",
        "/v1/blocks/1e3",
        "/v1/blocks/abc",
        "/v1/blocks/99999999999999999999",
    ):
        response = await client.get(path)
        await assert_error(response, 400, "malformed")


async def test_latest_on_an_empty_chain_is_404(empty_client: Client) -> None:
    for path in ("/v1/blocks/latest", "/v1/checkpoint", "/v1/blocks/latest/certificate"):
        response = await empty_client.get(path)
        assert response.status == 404, path


async def test_certificate(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/blocks/2/certificate")
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert header.height == 2 and answer["block_hash"] == header.hash
    assert len(answer["certificate"]["signatures"]) == 3


async def test_validators(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/validators")
    assert status == 200
    assert answer["validators"] == node.genesis.validators.to_obj()
    assert answer["hash"] == node.genesis.validators.hash
    assert (answer["total_power"], answer["quorum_power"]) == (4, 3)


async def test_status(client: Client, node: TestNode) -> None:
    response = await client.get("/v1/status")
    assert response.status == 200
    body = await response.json()
    assert body["chain_id"] == CHAIN_ID
    assert body["height"] == 9
    assert body["genesis_hash"] == node.genesis.hash.hex()
    assert [p["name"] for p in body["peers"]] == ["validator-0", "validator-1", "validator-2"]
    assert body["mempool_size"] == 0


def _double_vote(i: int, height: int, round_: int = 0) -> DuplicateVoteEvidence:
    votes = [
        Vote.create(VALIDATORS[i], CHAIN_ID, VoteType.PREVOTE, height, round_, h)
        for h in (b"\x0a" * 32, b"\x0b" * 32)
    ]
    return DuplicateVoteEvidence.of(*votes)


def _commit_evidence(node: TestNode, evidence: list[DuplicateVoteEvidence]) -> Block:
    height = node.chain.head().height + 1
    proposer = node.genesis.validators.proposer(height, 0)
    executed = node.executor.build_block(
        [], GENESIS_TIME + height * BLOCK_MS, proposer, node.last_cert, evidence
    )
    cert = certify(executed.block)
    node.executor.commit(executed, cert)
    node.last_cert = cert
    return executed.block


async def test_evidence_lists_committed_pieces_with_their_block_then_the_pool(
    client: Client, node: TestNode
) -> None:
    assert (await (await client.get("/v1/evidence")).json()) == {
        "evidence": [],
        "blocks": [],
        "next_from": None,
    }
    first, second, pending = _double_vote(3, 4), _double_vote(2, 5, 1), _double_vote(1, 6)
    block = _commit_evidence(node, [first, second])
    assert block.evidence == (first, second)
    node.evidence_items.append(pending.to_obj())
    status, answer = await get_obj(client, "/v1/evidence")
    assert status == 200 and answer["next_from"] is None
    [entry] = answer["blocks"]
    assert entry["height"] == block.height and entry["header"] == block.header.to_obj()
    CommitCertificate.from_obj(entry["certificate"]).verify(
        node.genesis.validators, CHAIN_ID, height=block.height, block_hash=block.hash
    )
    statuses = [(e["status"], e["height"], e["index"]) for e in answer["evidence"]]
    assert statuses == [
        ("committed", block.height, 0),
        ("committed", block.height, 1),
        ("pending", None, None),
    ]
    item = answer["evidence"][0]
    assert item["offender"] == VALIDATORS[3].public_key and item["kind"] == "duplicate_vote"
    assert (item["offence_height"], item["round"], item["vote_type"]) == (4, 0, 1)
    assert item["hash"] == first.hash and item["evidence"] == first.to_obj()
    assert answer["evidence"][2]["evidence"] == pending.to_obj()


async def test_evidence_pages_by_block(client: Client, node: TestNode) -> None:
    heights = [_commit_evidence(node, [_double_vote(i, 3)]).height for i in range(3)]
    status, answer = await get_obj(client, "/v1/evidence?limit=2")
    assert status == 200
    assert [b["height"] for b in answer["blocks"]] == heights[:2]
    assert answer["next_from"] == heights[2]
    status, answer = await get_obj(client, f"/v1/evidence?from={heights[2]}&limit=2")
    assert [b["height"] for b in answer["blocks"]] == heights[2:]
    assert answer["next_from"] is None
    for bad in ("from=0", "limit=0", "limit=101", "from=x"):
        response = await client.get(f"/v1/evidence?{bad}")
        assert response.status == 400


async def test_checkpoint(client: Client, node: TestNode, scenario: Scenario) -> None:
    status, answer = await get_obj(client, "/v1/checkpoint")
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert header.height == 9
    assert (answer["log_size"], answer["log_root"]) == (header.log_size, header.log_root)
    assert answer["chain_id"] == CHAIN_ID and answer["genesis_hash"] == node.genesis.hash


async def test_public_block_is_redacted_and_still_proves_its_header(
    client: Client, node: TestNode
) -> None:
    """An unsigned reader gets a block's shipment transactions as stubs (hash and kind),
    not their payloads; the tx root still checks."""
    status, answer = await get_obj(client, "/v1/blocks/3")
    assert status == 200
    header = BlockHeader.from_obj(answer["block"]["header"])
    assert header.hash == answer["hash"] == node.header(3).hash
    txs = answer["block"]["txs"]
    hidden = [i for i, tx in enumerate(txs) if tx.get("redacted")]
    assert hidden == answer["redacted"] and hidden == [0]  # the custody acceptance
    assert set(txs[0]) == {"redacted", "hash", "kind"}
    assert txs[1]["kind"] == "permit.approve" and "payload" in txs[1]  # permits are public
    hashes = [tx["hash"] if tx.get("redacted") else Transaction.from_obj(tx).hash for tx in txs]
    assert root_of(hashes) == header.tx_root


async def test_public_block_answers_are_rendered_once(client: Client, node: TestNode) -> None:
    calls: list[int] = []
    real = node.queries.block

    def counting(height: int) -> Block:
        calls.append(height)
        return real(height)

    node.queries.block = counting  # type: ignore[method-assign]
    for _ in range(3):
        assert (await get_obj(client, "/v1/blocks/3"))[0] == 200
    assert calls == [3]
