"""State records: a value proven at its key under a certified header's state root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ledger.block import BlockHeader
from ledger.encoding import Value, decode
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.schema import Described
from ledger.state_proof import StateProof, verify_state_proof, verify_withheld_value
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified

R = TypeVar("R", bound=Described)


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
class StateView:
    """The value proven at one state key (None: proven absent)."""

    certified: CertifiedHeader
    value: Value

    def histories(self) -> tuple[()]:
        """One state value: no history comes with it."""
        return ()


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
