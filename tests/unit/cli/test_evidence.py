"""Committed equivocation evidence for auditors: ``audit verify``
checks every committed piece and names a tampered one; ``cityledger evidence list``
re-verifies each piece against the genesis validators and its block's certificate and
refuses a node that forges, hides, adds or misdescribes evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient
from cli.evidence_cmd import fetch_evidence
from ledger.block import Block
from ledger.evidence import DuplicateVoteEvidence, Evidence, evidence_from_obj, evidence_summary
from ledger.storage import MemoryStore, WriteBatch, keys
from ledger.votes import NIL, Vote, VoteType
from lightclient.errors import VerificationError
from node.audit import AuditReport, ChainAuditor, StoreSource
from node.audit_segments import ParallelAudit, SegmentResult
from tests.unit.chain_kit import copy_store
from tests.unit.cli.kit import (
    CHAIN_ID,
    NAMES,
    VALIDATORS,
    CliNode,
    ServerThread,
    build_journey,
    certify,
    lying_proxy,
    message,
    now_ms,
    rewrite_block,
    run,
    serve,
)
from tests.unit.cli.test_audit import flip, leveldb_home

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT


def double_vote(
    i: int, height: int, round_: int = 0, kind: VoteType = PREVOTE, value: bytes = b"\x0b" * 32
) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.of(
        Vote.create(VALIDATORS[i], CHAIN_ID, kind, height, round_, NIL),
        Vote.create(VALIDATORS[i], CHAIN_ID, kind, height, round_, value),
    )


def commit_evidence(node: CliNode, pieces: list[Evidence]) -> Block:
    head = node.chain.head()
    proposer = node.genesis.validators.proposer(head.height + 1, 0)
    executed = node.executor.build_block([], now_ms(), proposer, node.last_cert, pieces)
    assert executed.block.evidence == tuple(pieces)
    cert = certify(executed.block)
    node.executor.commit(executed, cert)
    node.last_cert = cert
    return executed.block


@pytest.fixture
def chain() -> tuple[CliNode, list[Block]]:
    """A journey, two blocks with evidence (two pieces, then one), more blocks after."""
    node = CliNode()
    build_journey(node)
    first = commit_evidence(node, [double_vote(3, 2), double_vote(2, 3, 1, PRECOMMIT)])
    build_journey(node, "S-0002", milestones=1)
    second = commit_evidence(node, [double_vote(3, 4)])
    node.commit([])
    return node, [first, second]


def audit(node: CliNode, store: MemoryStore, workers: int = 0) -> AuditReport:
    return ChainAuditor(node.genesis, workers=workers).run(StoreSource(store), compare_with=store)


# --- audit verify -------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_the_audit_checks_every_committed_piece(
    chain: tuple[CliNode, list[Block]], workers: int
) -> None:
    node, _ = chain
    report = audit(node, node.store, workers)  # type: ignore[arg-type]
    assert report.ok, report.findings
    assert report.evidence == 3
    assert (report.segments >= 2) == (workers == 2)


def _zero_signature(obj: dict[str, Any]) -> None:
    obj["evidence"][1]["b"]["signature"] = bytes(64)


def _swap_piece(obj: dict[str, Any]) -> None:
    obj["evidence"][0] = double_vote(1, 2).to_obj()  # a real equivocation, never committed


def _repeat_piece(obj: dict[str, Any]) -> None:
    obj["evidence"][0] = double_vote(3, 2, value=b"\x0c" * 32).to_obj()  # committed before


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
@pytest.mark.parametrize(
    ("what", "at", "change", "record", "problem"),
    [
        ("signature", 0, _zero_signature, "evidence 1 (duplicate_vote (precommit) by incheon-2",
         "bad signature"),
        ("swapped piece", 0, _swap_piece, "block header", "evidence_root does not match"),
        ("repeated offence", 1, _repeat_piece, "evidence 0 (duplicate_vote (prevote) by daejeon-3",
         "already committed at height"),
    ],
)  # fmt: skip
def test_the_audit_names_a_tampered_evidence_entry(
    chain: tuple[CliNode, list[Block]],
    workers: int,
    what: str,
    at: int,
    change: Callable[[dict[str, Any]], None],
    record: str,
    problem: str,
) -> None:
    node, blocks = chain
    store = copy_store(node.store)  # type: ignore[arg-type]
    rewrite_block(blocks[at].height, change)(store)
    report = audit(node, store, workers)
    assert not report.ok and report.segments == 0
    finding = report.findings[0]
    assert finding.height == blocks[at].height, (what, report.findings)
    assert record in finding.record and problem in finding.problem, (what, str(finding))


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
def test_the_audit_compares_the_evidence_index(
    chain: tuple[CliNode, list[Block]], workers: int
) -> None:
    node, blocks = chain
    store = copy_store(node.store)  # type: ignore[arg-type]
    flip(store, keys.committed_evidence_key(blocks[0].height, 1), 30)
    finding = audit(node, store, workers).findings[0]
    assert (finding.height, finding.record) == (blocks[0].height, "committed evidence 1")
    store = copy_store(node.store)  # type: ignore[arg-type]
    batch = WriteBatch()
    batch.delete(next(k for k, _ in store.iterate(keys.OFFENCE)))
    store.write(batch)
    finding = audit(node, store, workers).findings[0]
    assert "offence index entry" in finding.record and "missing" in finding.problem


def test_segments_must_not_commit_an_offence_twice(chain: tuple[CliNode, list[Block]]) -> None:
    node, _ = chain
    g = node.genesis.hash

    def results(offences: list[bytes]) -> list[SegmentResult]:
        a = SegmentResult(1, 3, base_hash=g, last_hash=b"h2", end_cert_hash=b"c")
        b = SegmentResult(3, 5, base_hash=b"h2", last_hash=b"h4", end_cert_hash=b"c")
        b.first_cert_hash = b"c"
        a.offences, b.offences = [b"o1"], offences
        return [a, b]

    join = ParallelAudit(node.genesis, 2, None)._join
    joined = join(results([b"o2"]), 4)
    assert joined is not None and joined.evidence == 2
    assert join(results([b"o1"]), 4) is None


def test_cli_audit_reports_the_evidence(chain: tuple[CliNode, list[Block]], tmp_path: Path) -> None:
    node, _ = chain
    home = leveldb_home(node, tmp_path)
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"])
    assert result.exit_code == 0, message(result)
    assert json.loads(result.stdout)["evidence"] == 3
    text = run(["audit", "verify", "--home", str(home), "--workers", "0"])
    assert "3 committed pieces checked" in text.output, message(text)


# --- cityledger evidence list -----------------------------------------------------------------


@pytest.fixture
def served(chain: tuple[CliNode, list[Block]]) -> Any:
    node, _ = chain
    server = serve(node, produce=False)
    yield server
    server.stop()


@pytest.fixture
def genesis_path(chain: tuple[CliNode, list[Block]], tmp_path: Path) -> str:
    path = tmp_path / "genesis.json"
    path.write_text(chain[0].genesis.to_json())
    return str(path)


def test_evidence_list_verifies_each_piece(
    chain: tuple[CliNode, list[Block]], served: ServerThread, genesis_path: str
) -> None:
    node, blocks = chain
    pending = double_vote(0, 5)
    node.evidence = lambda: [pending.to_obj()]  # type: ignore[method-assign]
    result = run(["evidence", "list", "--node", served.url, "--genesis", genesis_path, "--json"])
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["verified"] is True
    committed = [(e["height"], e["index"], e["offender_name"]) for e in doc["committed"]]
    assert committed == [
        (blocks[0].height, 0, NAMES[3]),
        (blocks[0].height, 1, NAMES[2]),
        (blocks[1].height, 0, NAMES[3]),
    ]
    assert doc["committed"][1]["vote_type"] == int(PRECOMMIT)
    assert doc["committed"][0]["verified_by"] == NAMES[:3]
    assert [e["hash"] for e in doc["pending"]] == [pending.hash.hex()]
    text = run(["evidence", "list", "--node", served.url, "--genesis", genesis_path])
    assert text.exit_code == 0, message(text)
    for phrase in (NAMES[3], "committed", "pending", "3 pieces committed in 2 blocks",
                   f"verified at height {blocks[1].height}"):  # fmt: skip
        assert phrase in text.output, (phrase, text.output)
    later = run(
        ["evidence", "list", "--node", served.url, "--genesis", genesis_path, "--json",
         "--from", str(blocks[0].height + 1)]
    )  # fmt: skip
    assert [e["height"] for e in json.loads(later.stdout)["committed"]] == [blocks[1].height]


def test_evidence_list_follows_the_pages(
    chain: tuple[CliNode, list[Block]], served: ServerThread
) -> None:
    node, blocks = chain
    view = fetch_evidence(NodeClient(served.url), node.genesis, page_blocks=1)
    assert [(p.height, p.index) for p in view.committed] == [
        (blocks[0].height, 0),
        (blocks[0].height, 1),
        (blocks[1].height, 0),
    ]


def _first_committed(answer: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in answer["evidence"] if e["status"] == "committed")


def _forge_signature(answer: dict[str, Any]) -> None:
    item = _first_committed(answer)
    item["evidence"]["b"]["signature"] = bytes(64)
    item["hash"] = evidence_from_obj(item["evidence"]).hash  # a consistent lie


def _hide_piece(answer: dict[str, Any]) -> None:
    answer["evidence"] = [e for e in answer["evidence"] if e["index"] != 1]


def _add_piece(answer: dict[str, Any]) -> None:
    fake = dict(_first_committed(answer))
    extra = double_vote(1, 2)  # a real equivocation no block committed
    fake.update(index=2, hash=extra.hash, offender=extra.offender, evidence=extra.to_obj())
    answer["evidence"].insert(2, fake)


def _blame_another(answer: dict[str, Any]) -> None:
    _first_committed(answer)["offender"] = VALIDATORS[0].public_key


def _forge_certificate(answer: dict[str, Any]) -> None:
    answer["blocks"][0]["certificate"]["signatures"][0][1] = bytes(64)


def _forge_pending(answer: dict[str, Any]) -> None:
    piece = double_vote(0, 5)
    pending = {"status": "pending", "height": None, "index": None} | evidence_summary(piece)
    pending["evidence"]["a"]["signature"] = bytes(64)
    pending["hash"] = evidence_from_obj(pending["evidence"]).hash
    answer["evidence"].append(pending)


def _evidence_of_a_non_validator(answer: dict[str, Any]) -> None:
    from ledger.crypto import PrivateKey

    outsider = PrivateKey.from_label("outsider-validator")
    piece = DuplicateVoteEvidence.of(
        Vote.create(outsider, CHAIN_ID, PREVOTE, 2, 0, NIL),
        Vote.create(outsider, CHAIN_ID, PREVOTE, 2, 0, b"\x01" * 32),
    )
    item = _first_committed(answer)
    item.update(hash=piece.hash, offender=piece.offender, evidence=piece.to_obj())


@pytest.mark.parametrize(
    ("lie", "refusal"),
    [
        (_forge_signature, "does not verify (forged evidence)"),
        (_hide_piece, "evidence root does not match"),
        (_add_piece, "evidence root does not match"),
        (_blame_another, "its offender differs from the evidence it carries"),
        (_forge_certificate, "commit certificate does not check out"),
        (_forge_pending, "pending evidence 3 does not verify"),
        (_evidence_of_a_non_validator, "not a validator"),
    ],
)
def test_evidence_list_refuses_a_lying_node(
    served: ServerThread, genesis_path: str, lie: Callable[[dict[str, Any]], None], refusal: str
) -> None:
    def rewrite(path: str, answer: dict[str, Any]) -> dict[str, Any]:
        if path == "/v1/evidence":
            lie(answer)
        return answer

    proxy = lying_proxy(served.url, rewrite)
    try:
        result = run(["evidence", "list", "--node", proxy.url, "--genesis", genesis_path])
    finally:
        proxy.stop()
    assert result.exit_code != 0
    assert isinstance(result.exception, VerificationError), message(result)
    assert refusal in message(result), message(result)
