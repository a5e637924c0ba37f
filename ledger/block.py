"""Block headers, blocks and receipts.

The header commits to everything a light client or auditor needs: the link to
the previous block, the transactions (``tx_root``), the append-only log of all
transactions since genesis (``log_size``, ``log_root``), the state after this
block (``state_root``), its receipts (``results_root``), the validator set and
the previous block's commit certificate, and the equivocation evidence the block
commits (``evidence_root``). It names the validator set that certifies it
(``validators_hash``) and the one that certifies the next block
(``next_validators_hash``), so a client holding the set of height h checks a set
change at h+1 with nothing but h's certificate (lightclient/validator_history.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgpack

from ledger import merkle
from ledger.crypto import PUBLIC_KEY_SIZE
from ledger.digest import sha256_digest
from ledger.encoding import (
    Value,
    array_header,
    canonical,
    check_size,
    decode,
    encode,
    packb_canonical,
)
from ledger.errors import DecodeError, ValidationError
from ledger.evidence import EVIDENCE, MAX_BLOCK_EVIDENCE, Evidence, compute_evidence_root
from ledger.ids import HASH_SIZE
from ledger.schema import (
    COUNT,
    HASH,
    HEIGHT,
    PUBLIC_KEY,
    AnyMap,
    Int,
    List,
    Nested,
    Optional,
    Record,
    Str,
    described,
    read,
    wire,
)
from ledger.schema.records import Described
from ledger.tx import CHAIN_ID, Transaction, check_chain_id
from ledger.votes import CommitCertificate

ZERO_HASH = bytes(HASH_SIZE)
MAX_BLOCK_TXS = 100_000
MAX_EVENTS = 64

EVIDENCE_LIST = List(EVIDENCE, max_len=MAX_BLOCK_EVIDENCE)
"""A block's ``evidence`` field: at most MAX_BLOCK_EVIDENCE well-formed pieces."""


@described("header")
@dataclass(frozen=True, slots=True)
class BlockHeader(Described):
    chain_id: str = field(metadata=wire(CHAIN_ID))
    height: int = field(metadata=wire(HEIGHT))
    time_ms: int = field(metadata=wire(COUNT))
    prev_hash: bytes = field(metadata=wire(HASH))  # the genesis hash for height 1
    proposer: bytes = field(metadata=wire(PUBLIC_KEY))
    tx_count: int = field(metadata=wire(COUNT))
    tx_root: bytes = field(metadata=wire(HASH))
    log_size: int = field(metadata=wire(COUNT))
    log_root: bytes = field(metadata=wire(HASH))
    state_root: bytes = field(metadata=wire(HASH))
    results_root: bytes = field(metadata=wire(HASH))
    validators_hash: bytes = field(metadata=wire(HASH))  # the set that votes on this block
    # the set that votes on the next block (decided by the block before this one: a
    # change made by block h's execution is in force from h+2; docs/formats.md)
    next_validators_hash: bytes = field(metadata=wire(HASH))
    last_cert_hash: bytes = field(metadata=wire(HASH))  # ZERO_HASH for height 1
    # root over the hashes of the evidence the block commits
    evidence_root: bytes = field(metadata=wire(HASH))
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
            "next_validators_hash",
            "last_cert_hash",
            "evidence_root",
        ):
            if len(getattr(self, name)) != HASH_SIZE:
                raise ValidationError(f"header {name} must be 32 bytes")
        if not 0 <= self.tx_count <= MAX_BLOCK_TXS or self.log_size < self.tx_count:
            raise ValidationError("header tx_count / log_size out of range")
        encoded = encode(self.to_obj())
        object.__setattr__(self, "encoded", encoded)
        object.__setattr__(self, "hash", sha256_digest(encoded))


def compute_tx_root(txs: Sequence[Transaction]) -> bytes:
    """RFC 6962 root over the transaction hashes (leaf data = the 32-byte hash)."""
    return merkle.root_of([tx.hash for tx in txs])


@described("block")
@dataclass(frozen=True, slots=True)
class Block(Described):
    """A header, its transactions, the certificate that committed the previous block,
    and the equivocation evidence it commits.

    Carrying ``last_cert`` (as Tendermint's LastCommit) makes the certificate of
    height h-1 part of the chain at height h, so every node stores the same one
    and ``header.last_cert_hash`` can be checked by anyone. ``evidence`` (as
    Tendermint's block evidence) puts each verified offence on the chain once;
    ``header.evidence_root`` commits to it (:meth:`check_evidence_root`).
    """

    header: BlockHeader = field(metadata=wire(Nested(BlockHeader)))
    txs: tuple[Transaction, ...] = field(
        metadata=wire(List(Nested(Transaction), max_len=MAX_BLOCK_TXS))
    )
    last_cert: CommitCertificate | None = field(metadata=wire(Optional(Nested(CommitCertificate))))
    evidence: tuple[Evidence, ...] = field(default=(), metadata=wire(EVIDENCE_LIST))

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

    @classmethod
    def from_obj(cls, obj: Value, *, decoded: bool = False) -> Block:
        """The block in ``obj``; ``decoded``: it came straight out of ``decode()``."""
        if decoded:
            return block_from_obj(obj, _decoded_tx)
        return _RECORD.from_obj(obj)

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


_RECORD: Record[Block] = Block.__schema__
# The block with its transactions left as maps, for block_from_obj to parse its own way.
_WITH_TX_MAPS: Record[Block] = Record(
    Block, "block", override={"txs": List(AnyMap(), max_len=MAX_BLOCK_TXS)}
)


def _decoded_tx(obj: Value) -> Transaction:
    return Transaction.from_obj(obj, decoded=True)


def block_from_obj(obj: Value, parse_tx: Callable[[dict[str, Value]], Transaction]) -> Block:
    """``Block.from_obj`` with each transaction's map parsed by ``parse_tx`` (which raises
    :class:`DecodeError` on a bad one)."""
    header, tx_maps, cert, evidence = _WITH_TX_MAPS.values(obj)
    try:
        return Block(header, tuple([parse_tx(t) for t in tx_maps]), cert, evidence)
    except ValidationError as exc:
        raise DecodeError(str(exc)) from None


def evidence_list_from_obj(obj: Value) -> tuple[Evidence, ...]:
    """A block's ``evidence`` field: at most MAX_BLOCK_EVIDENCE well-formed pieces."""
    evidence: tuple[Evidence, ...] = read(EVIDENCE_LIST, obj, "block.evidence")
    return evidence


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


@described("event")
@dataclass(frozen=True, slots=True)
class Event(Described):
    """Something a transaction did, for subscribers and indexes: ``type`` + attributes."""

    type: str = field(metadata=wire(Str(max_len=64)))
    attrs: dict[str, Value] = field(metadata=wire(AnyMap()))


@described("receipt", convert=())
@dataclass(frozen=True, slots=True)
class Receipt(Described):
    """The outcome of one transaction in one block. ``code`` is empty when it succeeded."""

    tx_hash: bytes = field(metadata=wire(HASH))
    height: int = field(metadata=wire(HEIGHT))
    index: int = field(metadata=wire(Int(hi=MAX_BLOCK_TXS)))
    code: str = field(metadata=wire(Str(max_len=64)))
    message: str = field(metadata=wire(Str(max_len=1024)))
    events: tuple[Event, ...] = field(metadata=wire(List(Nested(Event), max_len=MAX_EVENTS)))
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

    def encode(self) -> bytes:
        return self.encoded

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        return cls.from_obj(decode(data))

    @property
    def hash(self) -> bytes:
        return sha256_digest(self.encoded)


def compute_results_root(receipts: Sequence[Receipt]) -> bytes:
    return merkle.root_of([r.hash for r in receipts])
