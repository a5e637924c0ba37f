"""Peer frames: canonical msgpack maps ``{"t": type, "b": body}`` with a size cap.

Every frame a peer sends is decoded strictly and turned into a typed message;
anything else is a :class:`~ledger.errors.DecodeError` that gets the peer
disconnected and scored down.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import Block
from ledger.encoding import Value, decode, encode, expect_bytes, expect_int, expect_list, expect_map
from ledger.errors import DecodeError
from ledger.tx import Transaction
from ledger.votes import CommitCertificate, Proposal, Vote

MAX_TX_BATCH = 10_000
MAX_SYNC_BLOCKS = 500


@dataclass(frozen=True, slots=True)
class TxBatch:
    txs: tuple[Transaction, ...]


@dataclass(frozen=True, slots=True)
class ProposalMsg:
    proposal: Proposal
    block: Block


@dataclass(frozen=True, slots=True)
class VoteMsg:
    vote: Vote


@dataclass(frozen=True, slots=True)
class StatusMsg:
    height: int  # latest committed height


@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    max_blocks: int


@dataclass(frozen=True, slots=True)
class SyncResponse:
    blocks: tuple[Block, ...]
    tip_cert: CommitCertificate | None  # certificate of the last block sent


Message = TxBatch | ProposalMsg | VoteMsg | StatusMsg | SyncRequest | SyncResponse


def encode_message(msg: Message) -> bytes:
    body: Value
    if isinstance(msg, TxBatch):
        kind, body = "txs", [tx.to_obj() for tx in msg.txs]
    elif isinstance(msg, ProposalMsg):
        kind, body = "proposal", {"proposal": msg.proposal.to_obj(), "block": msg.block.to_obj()}
    elif isinstance(msg, VoteMsg):
        kind, body = "vote", msg.vote.to_obj()
    elif isinstance(msg, StatusMsg):
        kind, body = "status", {"height": msg.height}
    elif isinstance(msg, SyncRequest):
        kind, body = "sync_req", {"from": msg.from_height, "max": msg.max_blocks}
    else:
        kind, body = (
            "sync_resp",
            {
                "blocks": [b.to_obj() for b in msg.blocks],
                "tip_cert": None if msg.tip_cert is None else msg.tip_cert.to_obj(),
            },
        )
    return encode({"t": kind, "b": body})


def decode_message(data: bytes, max_size: int) -> Message:
    m = expect_map(decode(data, max_size=max_size), "frame", ("t", "b"))
    kind, body = m["t"], m["b"]
    if kind == "txs":
        items = expect_list(body, "txs", max_len=MAX_TX_BATCH)
        return TxBatch(tuple(Transaction.from_obj(t) for t in items))
    if kind == "proposal":
        b = expect_map(body, "proposal frame", ("proposal", "block"))
        return ProposalMsg(Proposal.from_obj(b["proposal"]), Block.from_obj(b["block"]))
    if kind == "vote":
        return VoteMsg(Vote.from_obj(body))
    if kind == "status":
        b = expect_map(body, "status", ("height",))
        return StatusMsg(expect_int(b["height"], "status.height", hi=2**63 - 1))
    if kind == "sync_req":
        b = expect_map(body, "sync request", ("from", "max"))
        return SyncRequest(
            expect_int(b["from"], "sync.from", lo=1, hi=2**63 - 1),
            expect_int(b["max"], "sync.max", lo=1, hi=MAX_SYNC_BLOCKS),
        )
    if kind == "sync_resp":
        b = expect_map(body, "sync response", ("blocks", "tip_cert"))
        blocks = tuple(
            Block.from_obj(x) for x in expect_list(b["blocks"], "blocks", max_len=MAX_SYNC_BLOCKS)
        )
        cert = None if b["tip_cert"] is None else CommitCertificate.from_obj(b["tip_cert"])
        return SyncResponse(blocks, cert)
    raise DecodeError(f"unknown frame type {kind!r}")


def handshake_message(nonce: bytes, signer_key: bytes, other_key: bytes) -> bytes:
    """What each side signs: the other side's fresh challenge and both keys, in order."""
    expect_bytes(nonce, "challenge", size=32)
    return encode({"challenge": nonce, "signer": signer_key, "peer": other_key})
