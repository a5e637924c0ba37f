"""Peer frames: canonical msgpack maps ``{"t": type, "b": body}`` with a size cap.

Every frame a peer sends is decoded strictly and turned into a typed message;
anything else is a :class:`~ledger.errors.DecodeError` that gets the peer
disconnected and scored down.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.block import Block, block_from_obj
from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError
from ledger.evidence import Evidence, evidence_from_obj
from ledger.head import HeadStatement
from ledger.ids import HASH_SIZE
from ledger.schema import (
    COUNT,
    HASH,
    HEIGHT,
    AnyValue,
    Bytes,
    Int,
    List,
    Nested,
    Optional,
    Str,
    Struct,
    read,
)
from ledger.tx import Transaction
from ledger.votes import MAX_ROUND, CommitCertificate, Proposal, Vote

# Of the peer handshake (node/peers.py): 1 had no version field, 2 no announce frame (a
# node closes a link on a frame it does not know, so 3 refuses 2 at the handshake).
PROTOCOL_VERSION = 3
MAX_TX_BATCH = 10_000
MAX_SYNC_BLOCKS = 500
MAX_SNAP_INDEX = 1_000_001  # 0 the snapshot's description, then one per chunk
MAX_SNAP_PART = 4 * 1024 * 1024  # = ledger.state_snapshot.MAX_PART_BYTES
MAX_ANNOUNCE_TXS = 100_000  # a block body announced for speculation (node/speculation.py)
# A canonical frame is the map {"b": body, "t": kind}: keys sorted, so it ends with its
# kind, and a sync response can be told from its last bytes, before it is decoded.
SYNC_RESP_TAIL = b"\xa1t\xa9sync_resp"

_FRAME = Struct({"t": Str(max_len=64), "b": AnyValue()})
_TX_MAPS = List(AnyValue(), max_len=MAX_TX_BATCH)
_PROPOSAL_FRAME = Struct({"proposal": Nested(Proposal), "block": AnyValue()})
_STATUS = Struct({"height": COUNT})
_ANNOUNCE = Struct(
    {
        "height": HEIGHT,
        "round": Int(hi=MAX_ROUND - 1),
        "time_ms": Int(hi=2**63 - 1),
        "last_cert": Optional(Nested(CommitCertificate)),
        "txs": Bytes(max_size=HASH_SIZE * MAX_ANNOUNCE_TXS),
    }
)
_SYNC_REQUEST = Struct({"from": HEIGHT, "max": Int(lo=1, hi=MAX_SYNC_BLOCKS)})
_SNAP_REQUEST = Struct({"height": COUNT, "index": Int(lo=0, hi=MAX_SNAP_INDEX)})
_SNAP_RESPONSE = Struct(
    {"height": COUNT, "index": Int(lo=0, hi=MAX_SNAP_INDEX), "data": Bytes(max_size=MAX_SNAP_PART)}
)
# The blocks are left as maps for ``Block.from_obj(decoded=True)``: the frame came out of
# the strict decoder, so every map in it is canonical and a transaction's signed body is
# packed as it is, not canonicalised again (catch-up decodes thousands per answer).
_SYNC_RESPONSE = Struct(
    {
        "blocks": List(AnyValue(), max_len=MAX_SYNC_BLOCKS),
        "tip_cert": Optional(Nested(CommitCertificate)),
    }
)


@dataclass(frozen=True, slots=True)
class TxBatch:
    txs: tuple[Transaction, ...]


@dataclass(frozen=True, slots=True)
class ProposalMsg:
    proposal: Proposal
    block: Block
    # The frame's canonical bytes when known (received, or encoded once by
    # :func:`framed`): relaying and re-sending then cost no re-encoding.
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VoteMsg:
    vote: Vote
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AnnounceMsg:
    """A proposer's block body, sent before it executes the block, so that the
    validators can execute it at the same time (node/speculation.py): the height,
    round and time of the block, the certificate it carries, and its transactions'
    hashes in order. Sent to each validator directly, never relayed; taken only from the
    link of the round's proposer. It decides nothing: the proposal that follows is
    checked in full, and only its execution is taken from here, when its header is the
    one this body gives."""

    height: int
    round: int
    time_ms: int
    last_cert: CommitCertificate | None
    tx_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class EvidenceMsg:
    """One piece of equivocation evidence, gossiped once: verified before relay."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class HeadMsg:
    """A validator's signed "my head at time T" (ledger/head.py): kept in memory only."""

    statement: HeadStatement


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


@dataclass(frozen=True, slots=True)
class SnapRequest:
    """A part of a state snapshot (node/snapshots.py): height 0 asks for the list of
    snapshots held, index 0 for a snapshot's description, index i for its chunk i - 1."""

    height: int
    index: int


@dataclass(frozen=True, slots=True)
class SnapResponse:
    """The part asked for, as stored (empty: not held, e.g. deleted since it was listed)."""

    height: int
    index: int
    data: bytes


WireMessage = (
    TxBatch
    | ProposalMsg
    | VoteMsg
    | StatusMsg
    | SyncRequest
    | SyncResponse
    | EvidenceMsg
    | HeadMsg
    | SnapRequest
    | SnapResponse
    | AnnounceMsg
)


def framed(msg: ProposalMsg | VoteMsg) -> ProposalMsg | VoteMsg:
    """``msg`` carrying its encoded frame, so it is encoded once however often it is sent."""
    if msg.raw:
        return msg
    if isinstance(msg, ProposalMsg):
        return ProposalMsg(msg.proposal, msg.block, encode_message(msg))
    return VoteMsg(msg.vote, encode_message(msg))


def encode_message(msg: WireMessage) -> bytes:
    body: Value
    if isinstance(msg, ProposalMsg | VoteMsg) and msg.raw:
        return msg.raw
    if isinstance(msg, TxBatch):
        return _encode_tx_batch(msg.txs)
    if isinstance(msg, ProposalMsg):
        kind, body = "proposal", {"proposal": msg.proposal.to_obj(), "block": msg.block.to_obj()}
    elif isinstance(msg, VoteMsg):
        kind, body = "vote", msg.vote.to_obj()
    elif isinstance(msg, StatusMsg):
        kind, body = "status", {"height": msg.height}
    elif isinstance(msg, EvidenceMsg):
        kind, body = "evidence", msg.evidence.to_obj()
    elif isinstance(msg, HeadMsg):
        kind, body = "head", msg.statement.to_obj()
    elif isinstance(msg, SyncRequest):
        kind, body = "sync_req", {"from": msg.from_height, "max": msg.max_blocks}
    elif isinstance(msg, SnapRequest):
        kind, body = "snap_req", {"height": msg.height, "index": msg.index}
    elif isinstance(msg, SnapResponse):
        kind, body = "snap_resp", {"height": msg.height, "index": msg.index, "data": msg.data}
    elif isinstance(msg, AnnounceMsg):
        kind, body = "announce", _announce_body(msg)
    else:
        kind, body = (
            "sync_resp",
            {
                "blocks": [b.to_obj() for b in msg.blocks],
                "tip_cert": None if msg.tip_cert is None else msg.tip_cert.to_obj(),
            },
        )
    return encode({"t": kind, "b": body})


KnownTx = Callable[[bytes], Transaction | None]


def decode_message(data: bytes, max_size: int, known_tx: KnownTx | None = None) -> WireMessage:
    """Decode one frame strictly.

    ``known_tx`` (a signature → transaction lookup, e.g. the mempool's) lets a
    transaction this node already holds be taken as is instead of being built again
    from the frame; only when the frame's copy is identical to it, value for value and
    type for type, so the result is the same message either way.
    """
    m = read(_FRAME, decode(data, max_size=max_size), "frame")
    kind, body = m["t"], m["b"]
    if kind == "txs":
        items = read(_TX_MAPS, body, "txs")
        return TxBatch(tuple(_tx_from_obj(t, known_tx) for t in items))
    if kind == "proposal":
        b = read(_PROPOSAL_FRAME, body, "proposal frame")
        block = (
            Block.from_obj(b["block"], decoded=True)
            if known_tx is None
            else _block(b["block"], known_tx)
        )
        return ProposalMsg(b["proposal"], block, bytes(data))
    if kind == "vote":
        return VoteMsg(Vote.from_obj(body), bytes(data))
    if kind == "status":
        return StatusMsg(read(_STATUS, body, "status")["height"])
    if kind == "evidence":
        return EvidenceMsg(evidence_from_obj(body))
    if kind == "head":
        return HeadMsg(HeadStatement.from_obj(body))
    if kind == "sync_req":
        b = read(_SYNC_REQUEST, body, "sync request")
        return SyncRequest(b["from"], b["max"])
    if kind == "sync_resp":
        b = read(_SYNC_RESPONSE, body, "sync response")
        blocks = tuple(Block.from_obj(block, decoded=True) for block in b["blocks"])
        return SyncResponse(blocks, b["tip_cert"])
    if kind == "snap_req":
        b = read(_SNAP_REQUEST, body, "snapshot request")
        return SnapRequest(b["height"], b["index"])
    if kind == "snap_resp":
        b = read(_SNAP_RESPONSE, body, "snapshot response")
        return SnapResponse(b["height"], b["index"], b["data"])
    if kind == "announce":
        return _announce(read(_ANNOUNCE, body, "announce"))
    raise DecodeError(f"unknown frame type {kind!r}")


def _announce_body(msg: AnnounceMsg) -> Value:
    return {
        "height": msg.height,
        "round": msg.round,
        "time_ms": msg.time_ms,
        "last_cert": None if msg.last_cert is None else msg.last_cert.to_obj(),
        "txs": b"".join(msg.tx_hashes),
    }


def _announce(b: dict[str, Any]) -> AnnounceMsg:
    hashes = b["txs"]
    if len(hashes) % HASH_SIZE:
        raise DecodeError(f"announce: txs is not a whole number of {HASH_SIZE}-byte hashes")
    tx_hashes = tuple(hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE))
    return AnnounceMsg(b["height"], b["round"], b["time_ms"], b["last_cert"], tx_hashes)


def _tx_from_obj(obj: Value, known_tx: KnownTx | None) -> Transaction:
    if known_tx is not None and isinstance(obj, dict):
        signature = obj.get("signature")
        if isinstance(signature, bytes):
            tx = known_tx(signature)
            if tx is not None and _identical(tx.to_obj(), obj):
                return tx
    return Transaction.from_obj(obj, decoded=True)  # the frame's maps are canonical


def _block(obj: Value, known_tx: KnownTx) -> Block:
    """``Block.from_obj`` with known transactions taken from ``known_tx``."""
    return block_from_obj(obj, lambda tx: _tx_from_obj(tx, known_tx))


def _identical(a: Value, b: Value) -> bool:
    """Equal with the same types throughout (``1 == True`` in Python, not in msgpack)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# A canonical frame is the map {"b": body, "t": kind}: keys sorted, so "t" comes last.
_TXS_HEAD = b"\x82\xa1b"
_TXS_TAIL = b"\xa1t\xa3txs"
# A transaction's canonical map is its signed body's five keys plus "signature", which
# sorts last ("sender" < "signature"): the body's bytes without their map header.
_SIG_KEY = b"\xa9signature\xc4\x40"


def _encode_tx_batch(txs: tuple[Transaction, ...]) -> bytes:
    """The canonical ``txs`` frame, assembled from each transaction's signed body.

    Equal to ``encode({"t": "txs", "b": [tx.to_obj() for tx in txs]})`` (a unit test
    checks it) without walking and re-packing every payload again.
    """
    n = len(txs)
    if n < 16:
        head = bytes([0x90 | n])
    elif n < 2**16:
        head = b"\xdc" + struct.pack(">H", n)
    else:
        head = b"\xdd" + struct.pack(">I", n)
    parts = [_TXS_HEAD, head]
    for tx in txs:
        body = tx.body
        if body[0] != 0x85 or len(tx.signature) != 64:  # not the expected shape: the slow way
            parts.append(encode(tx.to_obj()))
            continue
        parts.append(b"\x86")
        parts.append(body[1:])
        parts.append(_SIG_KEY)
        parts.append(tx.signature)
    parts.append(_TXS_TAIL)
    return b"".join(parts)


def handshake_message(
    nonce: bytes,
    signer_key: bytes,
    other_key: bytes,
    server_cert: bytes = b"",
    client_cert: bytes = b"",
) -> bytes:
    """What each side signs: the other side's fresh challenge, both keys in order, the
    protocol version, and the SHA-256 fingerprints of the TLS session's server and
    client certificates as the signer sees them (empty on a plaintext link). A relay
    that terminates TLS, or splices two sessions, sees other certificates than either
    end, so a signature it forwards does not verify (docs/formats.md, "Peer links")."""
    read(HASH, nonce, "challenge")
    return encode(
        {
            "challenge": nonce,
            "signer": signer_key,
            "peer": other_key,
            "server_cert": server_cert,
            "client_cert": client_cert,
            "version": PROTOCOL_VERSION,
        }
    )
