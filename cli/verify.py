"""Checking a node's answers without trusting the node (pure: no I/O, no click).

Everything starts from the genesis file the user holds: its validator set and
chain id. An answer is accepted only when

1. its commit certificate carries more than 2/3 of the genesis validators'
   power for exactly the header that came with it (:func:`verify_certified`);
2. every record in it is proven by a state proof against that header's
   ``state_root``, under the key the record must live at (:func:`verify_item`);
3. every transaction it relies on is proven in a certified header's log or
   block (:func:`verify_receipt`, :func:`check_history_inclusion`).

Each failure raises :class:`VerificationError` saying what did not check out.
The provenance, find, permit-check and proof-bundle commands all go through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import state_keys as sk
from contracts.permits import permit_valid_at
from ledger import merkle
from ledger.block import BlockHeader, Receipt
from ledger.encoding import Value, decode
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.merkle import InclusionProof
from ledger.state_proof import StateProof, verify_state_proof
from ledger.votes import CommitCertificate


class VerificationError(ProofError):
    """An answer that does not check out against the genesis validator set."""

    code = "verification_failed"


@dataclass(frozen=True, slots=True)
class CertifiedHeader:
    """A header whose commit certificate verified against the genesis validators."""

    header: BlockHeader
    cert: CommitCertificate
    signers: tuple[str, ...]
    power: int
    total_power: int

    @property
    def height(self) -> int:
        return self.header.height

    def describe(self) -> str:
        names = ", ".join(self.signers)
        return (
            f"verified at height {self.height} by validators {names} "
            f"({self.power} of {self.total_power} voting power)"
        )


def _fail(message: str) -> VerificationError:
    return VerificationError(message)


def _field(obj: Any, name: str, what: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise _fail(f"{what} has no {name!r}")
    return obj[name]


# --- headers and certificates -----------------------------------------------------------------


def check_certificate(
    header: BlockHeader, cert: CommitCertificate, genesis: Genesis
) -> CertifiedHeader:
    """The header is on this chain and ``cert`` commits it with >2/3 of genesis power."""
    if header.chain_id != genesis.chain_id:
        raise _fail(f"the header is for chain {header.chain_id!r}, not {genesis.chain_id!r}")
    if header.validators_hash != genesis.validators.hash:
        raise _fail(f"header {header.height} names a validator set other than the genesis one")
    if header.proposer not in genesis.validators:
        raise _fail(f"header {header.height} names a proposer that is not a genesis validator")
    try:
        cert.verify(
            genesis.validators, genesis.chain_id, height=header.height, block_hash=header.hash
        )
    except LedgerError as exc:
        raise _fail(f"the commit certificate does not check out: {exc}") from None
    vs = genesis.validators
    signers = tuple(v.name for v in vs.validators if v.public_key in cert.signers)
    return CertifiedHeader(header, cert, signers, vs.power_of_set(cert.signers), vs.total_power)


def verify_certified(
    answer: Value, genesis: Genesis, cache: dict[bytes, CertifiedHeader] | None = None
) -> CertifiedHeader:
    """Check an answer's ``header`` and ``certificate`` (and its ``height``)."""
    try:
        header = BlockHeader.from_obj(_field(answer, "header", "the answer"))
        cert = CommitCertificate.from_obj(_field(answer, "certificate", "the answer"))
    except LedgerError as exc:
        raise _fail(f"the answer's header or certificate is malformed: {exc}") from None
    if answer.get("height", header.height) != header.height:
        raise _fail(f"the answer says height {answer.get('height')}, its header {header.height}")
    key = header.hash + cert.hash
    if cache is not None and key in cache:
        return cache[key]
    certified = check_certificate(header, cert, genesis)
    if cache is not None:
        cache[key] = certified
    return certified


# --- state records ----------------------------------------------------------------------------


def verify_item(item: Value, header: BlockHeader, key: bytes) -> Value:
    """The record proven at ``key`` under ``header.state_root`` (None when proven absent)."""
    what = f"the record at {key.decode('utf-8', 'replace')!r}"
    if _field(item, "key", what) != key:
        raise _fail(f"{what}: the node sent the record of another key")
    try:
        proof = StateProof.from_obj(_field(item, "proof", what))
    except LedgerError as exc:
        raise _fail(f"{what}: malformed state proof: {exc}") from None
    if proof.key != key:
        raise _fail(f"{what}: the state proof is for another key")
    try:
        verify_state_proof(header.state_root, proof)
    except ProofError as exc:
        raise _fail(f"{what}: state proof fails at height {header.height}: {exc}") from None
    record = None if proof.value is None else decode(proof.value)
    if _field(item, "record", what) != record:
        raise _fail(f"{what}: the record shown differs from the proven value (forged record)")
    return record


def require_record(item: Value, header: BlockHeader, key: bytes) -> dict[str, Value]:
    record = verify_item(item, header, key)
    if not isinstance(record, dict):
        raise _fail(
            f"{key.decode('utf-8', 'replace')!r} is proven absent at height {header.height}"
        )
    return record


# --- transactions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    receipt: Receipt
    certified: CertifiedHeader
    log_index: int


class RedactedError(LedgerError):
    """The node redacted what this reader may not see: not a lie, a missing key."""

    code = "redacted"


def verify_receipt(
    answer: Value,
    genesis: Genesis,
    tx_hash: bytes,
    cache: dict[bytes, CertifiedHeader] | None = None,
) -> VerifiedReceipt:
    """A receipt proven in its block's tx and results roots and in the ledger's log."""
    certified = verify_certified(answer, genesis, cache)
    header = certified.header
    stub = _field(answer, "receipt", "the receipt answer")
    if isinstance(stub, dict) and stub.get("redacted") is True:
        raise RedactedError(
            f"the node shows transaction {tx_hash.hex()[:16]}…'s receipt only to readers the "
            "read rules allow: give --key with a member key of a party to it (or an auditor's)"
        )
    try:
        receipt = Receipt.from_obj(stub)
        proofs = {
            name: InclusionProof.from_obj(_field(answer, name, "the receipt answer"))
            for name in ("block_proof", "results_proof", "log_proof")
        }
    except LedgerError as exc:
        raise _fail(f"transaction {tx_hash.hex()}: malformed receipt answer: {exc}") from None
    short = tx_hash.hex()[:16]
    if receipt.tx_hash != tx_hash or answer.get("hash", tx_hash) != tx_hash:
        raise _fail(f"transaction {short}…: the node answered with another transaction")
    if receipt.height != header.height:
        raise _fail(f"transaction {short}…: receipt height differs from its certified header")
    log_index = header.log_size - header.tx_count + receipt.index
    checks = (
        ("block_proof", merkle.leaf_hash(tx_hash), receipt.index, header.tx_count, "tx_root"),
        (
            "results_proof",
            merkle.leaf_hash(receipt.hash),
            receipt.index,
            header.tx_count,
            "results_root",
        ),
        ("log_proof", merkle.leaf_hash(tx_hash), log_index, header.log_size, "log_root"),
    )
    for name, leaf, index, size, root_name in checks:
        proof = proofs[name]
        if (proof.leaf_index, proof.tree_size) != (index, size):
            raise _fail(
                f"transaction {short}…: {name} is for leaf {proof.leaf_index} of "
                f"{proof.tree_size}, expected {index} of {size}"
            )
        try:
            proof.verify(leaf, getattr(header, root_name))
        except ProofError as exc:
            raise _fail(
                f"transaction {short}…: not in block {header.height}'s {root_name}: {exc}"
            ) from None
    return VerifiedReceipt(receipt, certified, log_index)


# --- shipments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShipmentView:
    certified: CertifiedHeader
    shipment: dict[str, Value]
    history: tuple[dict[str, Value], ...]
    tx_checked: bool = False

    @property
    def tx_hashes(self) -> list[bytes]:
        return [e["tx_hash"] for e in self.history]


def verify_shipment(answer: Value, genesis: Genesis, shipment_id: str) -> ShipmentView:
    """The shipment record and its whole history, proven at the answer's certified height."""
    certified = verify_certified(answer, genesis)
    header = certified.header
    record = require_record(
        _field(answer, "shipment", "the answer"), header, sk.shipment_key(shipment_id)
    )
    if record.get("id") != shipment_id:
        raise _fail(f"the proven record is not shipment {shipment_id!r}")
    length = record.get("history_len")
    items = _field(answer, "history", "the answer")
    if not isinstance(length, int) or not isinstance(items, list):
        raise _fail("the shipment record or its history is malformed")
    if len(items) != length:
        raise _fail(
            f"the shipment record says {length} history entries, the node sent {len(items)} "
            "(truncated or padded history)"
        )
    history = []
    for seq, item in enumerate(items):
        entry = require_record(item, header, sk.shipment_history_key(shipment_id, seq))
        if entry.get("seq") != seq or not isinstance(entry.get("tx_hash"), bytes):
            raise _fail(f"history entry {seq} is malformed")
        if not isinstance(entry.get("height"), int) or entry["height"] > header.height:
            raise _fail(f"history entry {seq} claims a height after the answered one")
        history.append(entry)
    end = verify_item(
        _field(answer, "history_end", "the answer"),
        header,
        sk.shipment_history_key(shipment_id, length),
    )
    if end is not None:
        raise _fail(f"an entry {length} exists after the last one the node sent (hidden tail)")
    return ShipmentView(certified, record, tuple(history))


def check_history_inclusion(
    view: ShipmentView,
    *,
    log_proofs: Sequence[Value] | None = None,
    receipts: Mapping[bytes, VerifiedReceipt] | None = None,
) -> ShipmentView:
    """Every history entry's transaction is in the ledger, and took effect.

    ``log_proofs`` (one per entry, against the answer's own certified log root) is
    the one-request form; otherwise each entry's verified receipt is needed.
    """
    header = view.certified.header
    for seq, entry in enumerate(view.history):
        tx_hash, height = entry["tx_hash"], entry["height"]
        label = f"history entry {seq} (transaction {tx_hash.hex()[:16]}…)"
        if log_proofs is not None:
            try:
                proof = InclusionProof.from_obj(log_proofs[seq])
                if proof.tree_size != header.log_size:
                    raise ProofError(f"proof is for a log of {proof.tree_size} leaves")
                proof.verify(merkle.leaf_hash(tx_hash), header.log_root)
            except (LedgerError, IndexError) as exc:
                raise _fail(f"{label} is not in the certified log: {exc}") from None
            continue
        got = None if receipts is None else receipts.get(tx_hash)
        if got is None:
            raise _fail(f"{label}: no proof of its transaction")
        if got.receipt.height != height:
            raise _fail(f"{label}: committed at height {got.receipt.height}, entry says {height}")
        if not got.receipt.ok:
            raise _fail(f"{label}: its transaction failed ({got.receipt.code}), yet it is recorded")
        if entry.get("recorded_ms") != got.certified.header.time_ms:
            raise _fail(f"{label}: record time differs from block {height}'s time")
    return ShipmentView(view.certified, view.shipment, view.history, tx_checked=True)


def verify_search(
    answer: Value,
    genesis: Genesis,
    *,
    container: str | None = None,
    party: str | None = None,
    status: str | None = None,
) -> tuple[CertifiedHeader, list[dict[str, Value]]]:
    """Every listed shipment is proven and matches every filter given."""
    certified = verify_certified(answer, genesis)
    items = _field(answer, "shipments", "the answer")
    if not isinstance(items, list):
        raise _fail("the search answer is malformed")
    out = []
    for item in items:
        key = _field(item, "key", "a search result")
        if not isinstance(key, bytes) or not key.startswith(b"shipment/") or key.count(b"/") != 1:
            raise _fail(f"a search result is not a shipment record: {key!r}")
        record = require_record(item, certified.header, key)
        parties = {record["consignor"], record["consignee"], record["declarant"]}
        parties.update(record["holders"])
        if (
            (container is not None and container not in record["containers"])
            or (party is not None and party not in parties)
            or (status is not None and status not in (record["stage"], record["customs_status"]))
        ):
            raise _fail(f"shipment {record['id']!r} does not match the search, yet it was listed")
        out.append(record)
    return certified, out


# --- permits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PermitView:
    certified: CertifiedHeader
    permit: dict[str, Value]
    history: tuple[dict[str, Value], ...]


def verify_permit(answer: Value, genesis: Genesis, permit_id: str) -> PermitView:
    certified = verify_certified(answer, genesis)
    header = certified.header
    record = require_record(
        _field(answer, "permit", "the answer"), header, sk.permit_key(permit_id)
    )
    items = answer.get("history", [])
    if not isinstance(items, list):
        raise _fail("the permit history is malformed")
    if items and len(items) != record.get("history_len"):
        raise _fail(
            f"the permit says {record.get('history_len')} history entries, "
            f"the node sent {len(items)}"
        )
    history = tuple(
        require_record(item, header, sk.permit_history_key(permit_id, seq))
        for seq, item in enumerate(items)
    )
    return PermitView(certified, record, history)


def verify_validity(
    answer: Value, genesis: Genesis, permit_id: str, at_ms: int
) -> tuple[PermitView, bool, str]:
    """Is the permit valid at ``at_ms``? Recomputed here from the proven record."""
    view = verify_permit(answer, genesis, permit_id)
    if answer.get("at_ms", at_ms) != at_ms:
        raise _fail(f"the node answered for time {answer.get('at_ms')}, not {at_ms}")
    valid, reason = permit_valid_at(view.permit, at_ms)
    if answer.get("valid", valid) != valid:
        raise _fail(f"the node says valid={answer.get('valid')}, the proven record says {valid}")
    return view, valid, reason


def verify_provenance(
    answer: Value,
    receipts: Mapping[bytes, Value],
    genesis: Genesis,
    shipment_id: str,
) -> ShipmentView:
    """A shipment answer plus, unless it carries ``history_tx_proofs``, each entry's receipt."""
    view = verify_shipment(answer, genesis, shipment_id)
    log_proofs = answer.get("history_tx_proofs")
    if log_proofs is not None:
        if not isinstance(log_proofs, list) or len(log_proofs) != len(view.history):
            raise _fail("history_tx_proofs must hold one proof per history entry")
        return check_history_inclusion(view, log_proofs=log_proofs)
    cache: dict[bytes, CertifiedHeader] = {}
    verified = {}
    for tx_hash in view.tx_hashes:
        got = receipts.get(tx_hash)
        if got is None:
            raise _fail(f"no receipt for history transaction {tx_hash.hex()}")
        verified[tx_hash] = verify_receipt(got, genesis, tx_hash, cache)
    return check_history_inclusion(view, receipts=verified)


def verify_state_answer(
    answer: Value, genesis: Genesis, key: bytes
) -> tuple[CertifiedHeader, Value]:
    """A ``/v1/state/{key}`` answer: the decoded value at ``key`` (None: proven absent)."""
    certified = verify_certified(answer, genesis)
    raw = answer.get("value")
    if raw is not None and not isinstance(raw, bytes):
        raise _fail("the state answer's value is not bytes")
    item = {
        "key": answer.get("key"),
        "proof": answer.get("proof"),
        "record": None if raw is None else decode(raw),
    }
    return certified, verify_item(item, certified.header, key)
