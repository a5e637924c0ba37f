"""Provenance: every history entry's transaction is in the ledger, and took effect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from contracts.shipment_records import ShipmentEvent
from ledger import merkle
from ledger.block import BlockHeader
from ledger.encoding import Value
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.merkle import InclusionProof
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader
from lightclient.receipts import VerifiedReceipt, verify_receipt
from lightclient.shipments import ShipmentView, verify_shipment


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
        tx_hash = entry.tx_hash
        label = f"history entry {seq} (transaction {tx_hash.hex()[:16]}…)"
        if log_proofs is not None:
            _check_in_log(log_proofs, seq, tx_hash, header, label)
        else:
            got = None if receipts is None else receipts.get(tx_hash)
            _check_took_effect(entry, got, label)
    return ShipmentView(view.certified, view.shipment, view.history, tx_checked=True)


def _check_in_log(
    log_proofs: Sequence[Value], seq: int, tx_hash: bytes, header: BlockHeader, label: str
) -> None:
    """``log_proofs[seq]`` proves ``tx_hash`` in the header's certified log."""
    try:
        proof = InclusionProof.from_obj(log_proofs[seq])
        if proof.tree_size != header.log_size:
            raise ProofError(f"proof is for a log of {proof.tree_size} leaves")
        proof.verify(merkle.leaf_hash(tx_hash), header.log_root)
    except (LedgerError, IndexError) as exc:
        raise VerificationError(f"{label} is not in the certified log: {exc}") from None


def _check_took_effect(entry: ShipmentEvent, got: VerifiedReceipt | None, label: str) -> None:
    """The entry's verified receipt: committed at its height, successfully, at its time."""
    height = entry.height
    if got is None:
        raise VerificationError(f"{label}: no proof of its transaction")
    if got.receipt.height != height:
        raise VerificationError(
            f"{label}: committed at height {got.receipt.height}, entry says {height}"
        )
    if not got.receipt.ok:
        raise VerificationError(
            f"{label}: its transaction failed ({got.receipt.code}), yet it is recorded"
        )
    if entry.recorded_ms != got.certified.header.time_ms:
        raise VerificationError(f"{label}: record time differs from block {height}'s time")


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
            raise VerificationError("history_tx_proofs must hold one proof per history entry")
        return check_history_inclusion(view, log_proofs=log_proofs)
    cache: dict[bytes, CertifiedHeader] = {}
    verified = {}
    for tx_hash in view.tx_hashes:
        got = receipts.get(tx_hash)
        if got is None:
            raise VerificationError(f"no receipt for history transaction {tx_hash.hex()}")
        verified[tx_hash] = verify_receipt(got, genesis, tx_hash, cache)
    return check_history_inclusion(view, receipts=verified)
