"""Block headers, blocks and receipts.

The header commits to everything a light client or auditor needs: the link to
the previous block, the transactions (``tx_root``), the append-only log of all
transactions since genesis (``log_size``, ``log_root``), the state after this
block (``state_root``), its receipts (``results_root``), the validator set and
the previous block's commit certificate, and the equivocation evidence the block
commits (``evidence_root``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

from ledger import merkle
from ledger.crypto import PUBLIC_KEY_SIZE
from ledger.encoding import (
    Value,
    array_header,
    canonical,
    check_size,
    decode,
    encode,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
    packb_canonical,
)
from ledger.errors import DecodeError, ValidationError
from ledger.evidence import (
    MAX_BLOCK_EVIDENCE,
    Evidence,
    compute_evidence_root,
    evidence_from_obj,
)
from ledger.ids import HASH_SIZE
from ledger.tx import Transaction, check_chain_id
from ledger.votes import CommitCertificate

ZERO_HASH = bytes(HASH_SIZE)
MAX_BLOCK_TXS = 100_000
MAX_EVENTS = 64

_HEADER_FIELDS = (
    "chain_id",
    "height",
    "time_ms",
    "prev_hash",
    "proposer",
    "tx_count",
    "tx_root",
    "log_size",
    "log_root",
    "state_root",
    "results_root",
    "validators_hash",
    "last_cert_hash",
    "evidence_root",
)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes  # the genesis hash for height 1
    proposer: bytes
    tx_count: int
    tx_root: bytes
    log_size: int
    log_root: bytes
    state_root: bytes
    results_root: bytes
    validators_hash: bytes
    last_cert_hash: bytes  # ZERO_HASH for height 1
    evidence_root: bytes  # root over the hashes of the evidence the block commits
    hash: bytes = field(init=False, repr=False, compare=False)
    encoded: bytes = field(init=False, repr=False, compare=False)
    """The canonical bytes, whose SHA-256 is :attr:`hash`."""

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        if not 1 <= self.height < 2**63:
            raise ValidationError("header height must be >= 1")
        if not 0 <= self.time_ms < 2**63:
            raise ValidationError("header time must be a non-negative millisecond count")
        if len(self.proposer) != PUBLIC_KEY_SIZE:
            raise ValidationError("header proposer must be a 32-byte key")
        for name in (
            "prev_hash",
            "tx_root",
            "log_root",
            "state_root",
            "results_root",
            "validators_hash",
            "last_cert_hash",
            "evidence_root",
        ):
            if len(getattr(self, name)) != HASH_SIZE:
                raise ValidationError(f"header {name} must be 32 bytes")
        if not 0 <= self.tx_count <= MAX_BLOCK_TXS or self.log_size < self.tx_count:
            raise ValidationError("header tx_count / log_size out of range")
        encoded = encode(self.to_obj())
        object.__setattr__(self, "encoded", encoded)
        object.__setattr__(self, "hash", hashlib.sha256(encoded).digest())

    def to_obj(self) -> dict[str, Value]:
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    @classmethod
    def from_obj(cls, obj: Value) -> BlockHeader:
        m = expect_map(obj, "header", _HEADER_FIELDS)
        for name in _HEADER_FIELDS:
            if name == "chain_id":
                expect_str(m[name], "header.chain_id", max_len=64)
            elif name in ("height", "time_ms", "tx_count", "log_size"):
                expect_int(m[name], f"header.{name}", hi=2**63 - 1)
            else:
                expect_bytes(m[name], f"header.{name}", size=32)
        try:
            return cls(**m)
        except ValidationError as exc:
            raise DecodeError(str(exc)) from None


def compute_tx_root(txs: Sequence[Transaction]) -> bytes:
    """RFC 6962 root over the transaction hashes (leaf data = the 32-byte hash)."""
    return merkle.root_of([tx.hash for tx in txs])


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions, the certificate that committed the previous block,
    and the equivocation evidence it commits.

    Carrying ``last_cert`` (as Tendermint's LastCommit) makes the certificate of
    height h-1 part of the chain at height h, so every node stores the same one
    and ``header.last_cert_hash`` can be checked by anyone. ``evidence`` (as
    Tendermint's block evidence) puts each verified offence on the chain once;
    ``header.evidence_root`` commits to it (:meth:`check_evidence_root`).
    """

    header: BlockHeader
    txs: tuple[Transaction, ...]
    last_cert: CommitCertificate | None
    evidence: tuple[Evidence, ...] = ()

    def __post_init__(self) -> None:
        if len(self.evidence) > MAX_BLOCK_EVIDENCE:
            raise ValidationError(
                f"block {self.header.height} carries {len(self.evidence)} pieces of evidence, "
                f"over {MAX_BLOCK_EVIDENCE}"
            )
        if len(self.txs) != self.header.tx_count:
            raise ValidationError(
                f"block {self.header.height} holds {len(self.txs)} transactions, "
                f"header says {self.header.tx_count}"
            )
        if self.header.height == 1:
            if self.last_cert is not None or self.header.last_cert_hash != ZERO_HASH:
                raise ValidationError("block 1 carries no previous certificate")
        elif self.last_cert is None or self.last_cert.hash != self.header.last_cert_hash:
            raise ValidationError(
                f"block {self.header.height}: last_cert does not match header.last_cert_hash"
            )
        elif self.last_cert.height != self.header.height - 1:
            raise ValidationError(f"block {self.header.height}: last_cert is for another height")
        elif self.last_cert.block_hash != self.header.prev_hash:
            raise ValidationError(f"block {self.header.height}: last_cert is for another block")

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def check_tx_root(self) -> None:
        """Raise unless the header's tx_root is the root over these transactions."""
        if compute_tx_root(self.txs) != self.header.tx_root:
            raise ValidationError(f"block {self.height}: tx_root does not match its transactions")

    def check_evidence_root(self) -> None:
        """Raise unless the header's evidence_root is the root over this evidence."""
        if compute_evidence_root(self.evidence) != self.header.evidence_root:
            raise ValidationError(
                f"block {self.height}: evidence_root does not match its "
                f"{len(self.evidence)} pieces of evidence"
            )

    def to_obj(self) -> dict[str, Value]:
        return {
            "header": self.header.to_obj(),
            "txs": [tx.to_obj() for tx in self.txs],
            "last_cert": None if self.last_cert is None else self.last_cert.to_obj(),
            "evidence": [e.to_obj() for e in self.evidence],
        }

    @classmethod
    def from_obj(cls, obj: Value, *, decoded: bool = False) -> Block:
        """The block in ``obj``; ``decoded``: it came straight out of ``decode()``."""
        m = expect_map(obj, "block", BLOCK_FIELDS)
        header = BlockHeader.from_obj(m["header"])
        raw_txs = expect_list(m["txs"], "block.txs", max_len=MAX_BLOCK_TXS)
        txs = tuple(Transaction.from_obj(t, decoded=decoded) for t in raw_txs)
        cert = None if m["last_cert"] is None else CommitCertificate.from_obj(m["last_cert"])
        evidence = evidence_list_from_obj(m["evidence"])
        try:
            return cls(header, txs, cert, evidence)
        except ValidationError as exc:
            raise DecodeError(str(exc)) from None

    def encode(self) -> bytes:
        """``encode(self.to_obj())``, joined from the header's and transactions' own bytes."""
        cert = b"\xc0" if self.last_cert is None else self.last_cert.encode()
        return check_size(
            b"".join(
                (
                    b"\x84\xa8evidence",
                    encode([e.to_obj() for e in self.evidence]) if self.evidence else b"\x90",
                    b"\xa6header",
                    self.header.encoded,
                    b"\xa9last_cert",
                    cert,
                    b"\xa3txs",
                    array_header(len(self.txs)),
                    *[tx.encode() for tx in self.txs],
                )
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Block:
        return cls.from_obj(decode(data), decoded=True)


BLOCK_FIELDS = ("header", "txs", "last_cert", "evidence")


def evidence_list_from_obj(obj: Value) -> tuple[Evidence, ...]:
    """A block's ``evidence`` field: at most MAX_BLOCK_EVIDENCE well-formed pieces."""
    items = expect_list(obj, "block.evidence", max_len=MAX_BLOCK_EVIDENCE)
    return tuple(evidence_from_obj(e) for e in items)


def decode_header(data: bytes) -> BlockHeader:
    """The header of a stored block's bytes, without decoding its transactions (a
    block's canonical map puts ``evidence`` and ``header`` before ``last_cert`` and
    ``txs``). For this node's own store: the bytes are not checked to be canonical,
    the header is (its hash is that of its canonical re-encoding)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(data) + 1)
    unpacker.feed(data)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "header":
                return BlockHeader.from_obj(unpacker.unpack())
            unpacker.skip()
    except (
        ValueError,
        TypeError,
        msgpack.OutOfData,
        msgpack.StackError,
        msgpack.FormatError,
    ) as exc:
        raise DecodeError(f"block: {exc}") from None
    raise DecodeError("block: no header")


@dataclass(frozen=True, slots=True)
class Event:
    """Something a transaction did, for subscribers and indexes: ``type`` + attributes."""

    type: str
    attrs: dict[str, Value]

    def to_obj(self) -> dict[str, Value]:
        return {"type": self.type, "attrs": self.attrs}

    @classmethod
    def from_obj(cls, obj: Value) -> Event:
        m = expect_map(obj, "event", ("type", "attrs"))
        if not isinstance(m["attrs"], dict):
            raise DecodeError("event.attrs: expected a map")
        return cls(expect_str(m["type"], "event.type", max_len=64), m["attrs"])


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one transaction in one block. ``code`` is empty when it succeeded."""

    tx_hash: bytes
    height: int
    index: int
    code: str
    message: str
    events: tuple[Event, ...]
    encoded: bytes = field(init=False, repr=False, compare=False)
    """The canonical bytes (stored, and hashed into the results root)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoded", self._encode())

    def _encode(self) -> bytes:
        """``encode(self.to_obj())``; only the event attributes need canonicalising."""
        code, message, tx_hash = self.code, self.message, self.tx_hash
        if not (
            type(code) is str
            and type(message) is str
            and type(tx_hash) is bytes
            and type(self.height) is int
            and type(self.index) is int
            and all(type(e.type) is str for e in self.events)
        ):
            return encode(self.to_obj())
        return check_size(
            packb_canonical(
                {
                    "code": code,
                    "events": [{"attrs": canonical(e.attrs), "type": e.type} for e in self.events],
                    "height": self.height,
                    "index": self.index,
                    "message": message,
                    "tx_hash": tx_hash,
                }
            )
        )

    @property
    def ok(self) -> bool:
        return self.code == ""

    def to_obj(self) -> dict[str, Value]:
        return {
            "tx_hash": self.tx_hash,
            "height": self.height,
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "events": [e.to_obj() for e in self.events],
        }

    @classmethod
    def from_obj(cls, obj: Value) -> Receipt:
        m = expect_map(obj, "receipt", ("tx_hash", "height", "index", "code", "message", "events"))
        return cls(
            tx_hash=expect_bytes(m["tx_hash"], "receipt.tx_hash", size=32),
            height=expect_int(m["height"], "receipt.height", lo=1, hi=2**63 - 1),
            index=expect_int(m["index"], "receipt.index", hi=MAX_BLOCK_TXS),
            code=expect_str(m["code"], "receipt.code", max_len=64),
            message=expect_str(m["message"], "receipt.message", max_len=1024),
            events=tuple(
                Event.from_obj(e)
                for e in expect_list(m["events"], "receipt.events", max_len=MAX_EVENTS)
            ),
        )

    def encode(self) -> bytes:
        return self.encoded

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        return cls.from_obj(decode(data))

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.encoded).digest()


def compute_results_root(receipts: Sequence[Receipt]) -> bytes:
    return merkle.root_of([r.hash for r in receipts])
