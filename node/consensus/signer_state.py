"""The signer's durable state and how it is stored; the signing rules are in
:mod:`node.consensus.signer`.

What the signer last signed — (height, round, step), the exact signed bytes and the
signature, with the lock, the locked block and every message signed at the current
height — is made durable before a signature leaves the signer. A validator node keeps
it in its own file in the node home, **outside** the chain store
(:class:`SignerStateFile`, ``<home>/signer_state.msgpack``, like Tendermint's
``priv_validator_state.json``): a damaged chain store is remedied by emptying
``data/``, and that must not erase the record of what the key signed. The file is
replaced atomically (temporary file, fsync, rename, fsync of the directory), and a
SHA-256 of its body tells a damaged file from a valid one (format:
:class:`SignerStateFile`).

Tests, the simulator and benchmarks may pass a :class:`~ledger.storage.KVStore`
instead: one synced batch under ``keys.SIGNER`` — the last signed state at
:data:`STATE_KEY`, each message signed at the current height under
:data:`MESSAGE_PREFIX` (see :func:`message_key`), the locked block's bytes at
:data:`BLOCK_KEY`. That is also the layout of nodes before the file existed, which
:func:`node.consensus.signer.open_signer` migrates.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError, ValidationError
from ledger.schema import (
    COUNT,
    HEIGHT,
    PUBLIC_KEY,
    SIGNATURE,
    AnyValue,
    Bytes,
    Int,
    List,
    Nested,
    Struct,
    read,
)
from ledger.storage import KVStore, WriteBatch
from ledger.storage import keys as K
from ledger.votes import NIL, Proposal, Vote
from node.consensus.errors import SignerStateError

STATE_KEY = K.SIGNER + b"last"
MESSAGE_PREFIX = K.SIGNER + b"msg"  # + height (8) + round (4) + step (1) -> message
BLOCK_KEY = K.SIGNER + b"block"  # the locked block's bytes (KVStore form only)
MAX_POLKA = 256
FILE_FORMAT = "cityledger-signer-state"
FILE_VERSION = 1
MAX_FILE_BYTES = 16 * 1024 * 1024  # one block (at most 4 MiB by default) and the messages

# The last signed state as stored: the validator's key and the SignedState's fields.
_STATE = Struct(
    {
        "validator": PUBLIC_KEY,
        "height": HEIGHT,
        "round": Int(hi=2**31),
        "step": Int(lo=1, hi=3),
        "message": Bytes(max_size=1024),
        "signature": SIGNATURE,
        "lock_height": COUNT,
        "lock_round": Int(lo=-1, hi=2**31),
        "lock_hash": Bytes(max_size=32),
        "lock_polka": List(Nested(Vote), max_len=MAX_POLKA),
    }
)
_FILE = Struct({"body": Bytes(), "format": AnyValue(), "sha256": AnyValue(), "version": AnyValue()})
# The file body's fields; node.consensus.signer reads their values.
_FILE_FIELDS = Struct(
    {
        name: AnyValue()
        for name in (
            "chain_id",
            "validator",
            "floor",
            "floor_pending",
            "state",
            "messages",
            "lock_block",
        )
    }
)


@dataclass(frozen=True, slots=True)
class Lock:
    """The last non-nil precommit signed at a height and the prevotes behind it."""

    round: int
    block_hash: bytes
    polka: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class SignedState:
    """What the signer last signed, and the lock it implies."""

    height: int
    round: int
    step: int  # Step.PROPOSE / PREVOTE / PRECOMMIT
    message: bytes
    signature: bytes
    lock_height: int = 0  # 0: no lock
    lock_round: int = -1
    lock_hash: bytes = NIL
    lock_polka: tuple[Vote, ...] = ()

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


def message_key(height: int, round_: int, step: int) -> bytes:
    return MESSAGE_PREFIX + K.height_bytes(height) + round_.to_bytes(4, "big") + bytes([step])


class SignerStateFile:
    """The signer's durable state as one file, replaced atomically on every change.

    Format: a canonical msgpack map ``{"body": <bytes>, "format":
    "cityledger-signer-state", "sha256": <32 bytes>, "version": 1}``; ``body`` is the
    canonical msgpack of ``{"chain_id", "validator", "floor", "floor_pending",
    "state", "messages", "lock_block"}`` and ``sha256`` its digest, so a damaged file
    is told from a valid one rather than misread (docs/consensus.md, "Signer").
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict[str, Value]:
        """The body; :class:`SignerStateError` if the file is unreadable or damaged."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SignerStateError(
                f"cannot read the signer state file {self.path}: {exc}"
            ) from None
        try:
            outer = read(_FILE, decode(raw), "signer state file")
            if outer["format"] != FILE_FORMAT:
                raise DecodeError(f"format is {outer['format']!r}, not {FILE_FORMAT!r}")
            if outer["version"] != FILE_VERSION:
                raise DecodeError(f"version {outer['version']!r} is not {FILE_VERSION}")
            body = outer["body"]
            if hashlib.sha256(body).digest() != outer["sha256"]:
                raise DecodeError("its checksum does not match its contents")
            fields: dict[str, Value] = read(_FILE_FIELDS, decode(body), "signer state")
            return fields
        except (DecodeError, ValidationError) as exc:
            raise SignerStateError(f"the signer state file {self.path} is damaged: {exc}") from None

    def write(self, body: dict[str, Value]) -> None:
        """Durably replace the file: temporary file, fsync, rename, fsync the directory."""
        data = encode(body)
        doc = encode(
            {
                "body": data,
                "format": FILE_FORMAT,
                "sha256": hashlib.sha256(data).digest(),
                "version": FILE_VERSION,
            }
        )
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(doc)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def forget_legacy(store: KVStore) -> None:
    batch = WriteBatch()
    for key, _ in store.iterate(K.SIGNER):
        batch.delete(key)
    if batch.items():
        store.write(batch, sync=True)


def state_obj(validator: bytes, state: SignedState) -> dict[str, Value]:
    return {
        "validator": validator,
        "height": state.height,
        "round": state.round,
        "step": state.step,
        "message": state.message,
        "signature": state.signature,
        "lock_height": state.lock_height,
        "lock_round": state.lock_round,
        "lock_hash": state.lock_hash,
        "lock_polka": [v.to_obj() for v in state.lock_polka],
    }


def decode_state(obj: Value) -> SignedState:
    """The state stored as ``obj`` (:func:`state_obj`'s map; its validator key is checked
    for shape here, against the signer's by the caller)."""
    m = read(_STATE, obj, "signer state")
    del m["validator"]
    return SignedState(**m)


def encode_signed(message: Proposal | Vote) -> dict[str, Value]:
    kind = "proposal" if isinstance(message, Proposal) else "vote"
    return {kind: message.to_obj()}


def decode_signed(item: object) -> Proposal | Vote:
    if isinstance(item, dict) and set(item) == {"proposal"}:
        return Proposal.from_obj(item["proposal"])
    if isinstance(item, dict) and set(item) == {"vote"}:
        return Vote.from_obj(item["vote"])
    raise DecodeError("signed message: expected {'proposal': ...} or {'vote': ...}")
