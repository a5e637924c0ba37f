"""Execution context: layered, buffered reads and writes for one block and one transaction.

Reads go through three layers — this transaction's writes, then the block's
pending writes, then committed state. A handler only ever writes into its own
transaction buffer; the engine merges that buffer into the block only when the
handler returns without error, so a refused transaction can never leave a
half-write behind. Handlers never read the secondary index: everything they
decide on is in authenticated state.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from contracts.errors import ContractError
from contracts.fields import Acted
from contracts.params import AppParams
from contracts.record_cache import remember, typed_record
from contracts.validator_state import current_set, last_signed, scheduled_set
from ledger.block import Event
from ledger.encoding import Value, encode
from ledger.genesis import Genesis
from ledger.schema import Described
from ledger.tx import Transaction
from ledger.validators import ValidatorSet, ValidatorUpdate

R = TypeVar("R", bound=Described)


class StoredRecord(Protocol):
    """A record that knows its own state key and its stored map."""

    @property
    def key(self) -> bytes: ...

    def to_obj(self) -> dict[str, Value]: ...


class StateReader(Protocol):
    """Committed authenticated state (raw canonical bytes)."""

    def get(self, key: bytes) -> bytes | None: ...


class BlockBuffer:
    """The pending writes of the block being executed, over committed state.

    Committed values are read once a block: ``read`` keeps each one the block has read
    (absent ones as ``None``) and answers the same key again from there. Committed
    state does not change while a block executes, and a key the block writes is
    answered from ``state`` first from then on (a write never leaves ``state``), so a
    kept value is never stale. Half of a block's reads of committed state were keys it
    had read before (the organisation's suspension flag and the sender's member record
    of every transaction: 94,544 of 192,934 in the 49,210-transaction bench chain),
    each one a walk through the layers to LevelDB (docs/performance.md, "Committed
    state read once a block"). Bounded by the block: a block reads a few keys a
    transaction, and the buffer lives as long as its execution."""

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.state: dict[bytes, bytes | None] = {}
        self.index: dict[bytes, bytes | None] = {}
        self.read: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        state = self.state
        if key in state:
            return state[key]
        read = self.read
        if key in read:
            return read[key]
        value = read[key] = self.base.get(key)
        return value


@dataclass(frozen=True, slots=True)
class Sender:
    """The authenticated sender of a transaction: its key, organisation and roles."""

    public_key: bytes
    org: str
    roles: frozenset[str]


@dataclass(eq=False)
class TxContext:
    """What a handler sees: the block environment, the sender, and buffered state access
    (this transaction's writes, index writes and events, kept until the engine merges them)."""

    block: BlockBuffer
    genesis: Genesis
    params: AppParams
    height: int
    time_ms: int
    tx: Transaction
    sender: Sender
    writes: dict[bytes, bytes | None] = field(default_factory=dict, init=False)
    index_writes: dict[bytes, bytes | None] = field(default_factory=dict, init=False)
    events: list[Event] = field(default_factory=list, init=False)

    # --- state -------------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.block.get(key)

    def record(self, key: bytes, cls: type[R]) -> R | None:
        """The typed record at ``key``, or ``None``."""
        raw = self.get(key)
        return None if raw is None else typed_record(cls, raw)

    def require_record(self, key: bytes, cls: type[R], what: str, ident: str) -> R:
        """The typed record at ``key``; ``not_found`` naming ``what`` ``ident`` if absent."""
        record = self.record(key, cls)
        if record is None:
            raise ContractError("not_found", f"{what} {ident!r} does not exist")
        return record

    def acted(self) -> Acted:
        """Who acts in this transaction, at which height, in which transaction: what every
        history entry it writes records."""
        return {
            "actor_org": self.sender.org,
            "actor": self.sender.public_key,
            "height": self.height,
            "tx_hash": self.tx_hash,
        }

    def store(self, key: bytes, record: dict[str, Value]) -> None:
        self.writes[key] = encode(record)

    def save(self, record: StoredRecord) -> None:
        """Store ``record`` under its own key (and keep it for the next read of it)."""
        raw = encode(record.to_obj())
        self.writes[record.key] = raw
        remember(record, raw)

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    # --- indexes and events ------------------------------------------------------------------

    def index_put(self, key: bytes, value: bytes) -> None:
        self.index_writes[key] = value

    def index_delete(self, key: bytes) -> None:
        self.index_writes[key] = None

    def emit(self, type_: str, attrs: dict[str, Value]) -> None:
        self.events.append(Event(type_, attrs))

    # --- helpers -----------------------------------------------------------------------------

    @property
    def tx_hash(self) -> bytes:
        return self.tx.hash

    # --- the validator set (contracts/validator_state.py) ------------------------------

    @property
    def validators(self) -> ValidatorSet:
        """The validator set in force for the block being executed."""
        return current_set(self.block, self.genesis)

    def schedule_validator_updates(self, updates: Sequence[ValidatorUpdate]) -> None:
        """Change the set from two heights on (after this block, merged in order with the
        block's earlier updates; dropped with the transaction's other writes if it fails).
        ``wrong_state`` when they do not apply to the set so far."""
        key, raw = scheduled_set(self, self.genesis, updates)
        self.writes[key] = raw

    def last_signed_height(self, public_key: bytes) -> int | None:
        """The highest height whose commit certificate (as carried in the ``last_cert`` of
        the blocks executed so far, this one's included) bears this key's signature."""
        return last_signed(self, public_key)

    def has_role(self, *roles: str) -> bool:
        return not self.sender.roles.isdisjoint(roles)

    def commit(self) -> None:
        """Merge this transaction's writes into the block (only after success)."""
        self.block.state.update(self.writes)
        self.block.index.update(self.index_writes)


@dataclass(frozen=True, slots=True)
class Handler:
    """One transaction kind: who may send it, how its payload parses, what it does."""

    kind: str
    roles: frozenset[str]
    parse: Callable[[Value], Any]
    apply: Callable[[TxContext, Any], None]
    summary: str


def handler(
    payload: type[Described], roles: set[str], *, parse: Callable[[Value], Any] | None = None
) -> Callable[[Callable[[TxContext, Any], None]], Handler]:
    """Decorator turning an ``apply(ctx, payload)`` function into the :class:`Handler` of
    ``payload``'s kind, sent by ``roles``. The payload's description gives the kind (its
    name), the parser (unless ``parse`` reads it further) and the summary (the first
    paragraph of its docstring), so a kind is named and explained in one place."""
    record = payload.__schema__
    summary = " ".join(inspect.cleandoc(payload.__doc__ or "").split("\n\n")[0].split())

    def wrap(apply: Callable[[TxContext, Any], None]) -> Handler:
        return Handler(record.what, frozenset(roles), parse or record.from_obj, apply, summary)

    return wrap
