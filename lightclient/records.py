"""State records: a value proven at its key under a certified header's state root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

from ledger.block import BlockHeader
from ledger.encoding import Value, decode
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.state_proof import StateProof, verify_state_proof, verify_withheld_value
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, NoHistory, verify_certified


class Typed(Protocol):
    """A record class (any :class:`~ledger.schema.Described`): read from its stored map."""

    @classmethod
    def from_obj(cls, obj: Value) -> Self: ...


class HistoryEntry(Typed, Protocol):
    """A stored history entry: its place in the history and the height that wrote it."""

    @property
    def seq(self) -> int: ...

    @property
    def height(self) -> int: ...


class KeptRecord(Typed, Protocol):
    """A record that keeps a history: its id and how many entries it declares."""

    @property
    def id(self) -> str: ...

    @property
    def history_len(self) -> int: ...


R = TypeVar("R", bound=Typed)
K = TypeVar("K", bound=KeptRecord)
E = TypeVar("E", bound=HistoryEntry)


def verify_item(item: Value, header: BlockHeader, key: bytes) -> Value:
    """The record proven at ``key`` under ``header.state_root`` (None when proven absent)."""
    what = f"the record at {key.decode('utf-8', 'replace')!r}"
    if answer_field(item, "key", what) != key:
        raise VerificationError(f"{what}: the node sent the record of another key")
    try:
        proof = StateProof.from_obj(answer_field(item, "proof", what))
    except LedgerError as exc:
        raise VerificationError(f"{what}: malformed state proof: {exc}") from None
    if proof.key != key:
        raise VerificationError(f"{what}: the state proof is for another key")
    try:
        verify_state_proof(header.state_root, proof)
    except ProofError as exc:
        raise VerificationError(
            f"{what}: state proof fails at height {header.height}: {exc}"
        ) from None
    record = None if proof.value is None else decode(proof.value)
    if answer_field(item, "record", what) != record:
        raise VerificationError(
            f"{what}: the record shown differs from the proven value (forged record)"
        )
    return record


def verify_withheld(item: Value, header: BlockHeader, key: bytes) -> None:
    """A redacted entry: ``key`` is proven present under ``header.state_root`` with a
    value the node withheld (only its SHA-256 is shown)."""
    what = f"the redacted entry at {key.decode('utf-8', 'replace')!r}"
    if answer_field(item, "key", what) != key:
        raise VerificationError(f"{what}: the node sent the entry of another key")
    value_hash = answer_field(item, "value_hash", what)
    try:
        proof = StateProof.from_obj(answer_field(item, "proof", what))
        if proof.key != key:
            raise VerificationError(f"{what}: the state proof is for another key")
        if not isinstance(value_hash, bytes):
            raise ProofError("its value hash is not bytes")
        verify_withheld_value(header.state_root, proof, value_hash)
    except LedgerError as exc:  # ProofError is one
        raise VerificationError(f"{what}: proof fails at height {header.height}: {exc}") from None


def require_record(item: Value, header: BlockHeader, key: bytes) -> dict[str, Value]:
    """The record proven at ``key``; proven absence is a failure here."""
    record = verify_item(item, header, key)
    if not isinstance(record, dict):
        raise VerificationError(
            f"{key.decode('utf-8', 'replace')!r} is proven absent at height {header.height}"
        )
    return record


def require_typed(item: Value, header: BlockHeader, key: bytes, kind: type[R]) -> R:
    """The record proven at ``key``, read as a ``kind`` (a contract's record class)."""
    record = require_record(item, header, key)
    try:
        return kind.from_obj(record)
    except LedgerError as exc:
        raise VerificationError(
            f"{key.decode('utf-8', 'replace')!r} is not a well-formed {kind.__name__} record: {exc}"
        ) from None


@dataclass(frozen=True, slots=True)
class KeptHistory(Generic[K, E]):
    """A record kind that keeps a numbered history beside it (a shipment, a permit):
    ``noun`` names it in an answer and in refusals; the record lives at ``key(id)``,
    entry ``seq`` of its history at ``entry_key(id, seq)``."""

    noun: str
    kind: type[K]
    entry_kind: type[E]
    key: Callable[[str], bytes]
    entry_key: Callable[[str, int], bytes]

    def verify(self, answer: Value, header: BlockHeader, ident: str) -> tuple[K, tuple[E, ...]]:
        """Record ``ident`` proven under ``header`` and its whole history as the answer lists
        it: exactly the entries the record declares (none cut off, none added), entry
        ``seq`` proven at its key, numbered ``seq`` and written no later than ``header``."""
        item = answer_field(answer, self.noun, "the answer")
        record = require_typed(item, header, self.key(ident), self.kind)
        if record.id != ident:
            raise VerificationError(f"the proven record is not {self.noun} {ident!r}")
        items = answer_field(answer, "history", "the answer")
        if not isinstance(items, list):
            raise VerificationError(f"the {self.noun} history is malformed")
        declared = record.history_len
        if len(items) != declared:
            raise VerificationError(
                f"the {self.noun} record says {declared} history entries, the node sent "
                f"{len(items)} (truncated or padded history)"
            )
        history = tuple(self._entry(item, header, ident, seq) for seq, item in enumerate(items))
        return record, history

    def _entry(self, item: Value, header: BlockHeader, ident: str, seq: int) -> E:
        entry = require_typed(item, header, self.entry_key(ident, seq), self.entry_kind)
        if entry.seq != seq:
            raise VerificationError(f"{self.noun} {ident!r}: history entry {seq} is malformed")
        if entry.height > header.height:
            raise VerificationError(
                f"{self.noun} {ident!r}: history entry {seq} claims a height after the answered one"
            )
        return entry


@dataclass(frozen=True, slots=True)
class StateView(NoHistory):
    """The value proven at one state key (None: proven absent)."""

    certified: CertifiedHeader
    value: Value


def verify_state_answer(
    answer: Value, genesis: Genesis, key: bytes
) -> tuple[CertifiedHeader, Value]:
    """A ``/v1/state/{key}`` answer: the decoded value at ``key`` (None: proven absent)."""
    view = verify_state_view(answer, genesis, key)
    return view.certified, view.value


def verify_state_view(answer: Value, genesis: Genesis, key: bytes) -> StateView:
    """A ``/v1/state/{key}`` answer as a :class:`StateView`."""
    certified = verify_certified(answer, genesis)
    raw = answer.get("value")
    if raw is not None and not isinstance(raw, bytes):
        raise VerificationError("the state answer's value is not bytes")
    item = {
        "key": answer.get("key"),
        "proof": answer.get("proof"),
        "record": None if raw is None else decode(raw),
    }
    return StateView(certified, verify_item(item, certified.header, key))
