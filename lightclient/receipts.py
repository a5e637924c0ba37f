"""Receipts: a transaction proven in its block's tx and results roots and in the log."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle
from ledger.block import Receipt
from ledger.encoding import Value
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.merkle import InclusionProof
from lightclient.errors import RedactedError, VerificationError, answer_field
from lightclient.headers import CertifiedHeader, NoHistory, verify_certified

PROOF_NAMES = ("block_proof", "results_proof", "log_proof")


@dataclass(frozen=True, slots=True)
class VerifiedReceipt(NoHistory):
    receipt: Receipt
    certified: CertifiedHeader
    log_index: int


def verify_receipt(
    answer: Value,
    genesis: Genesis,
    tx_hash: bytes,
    cache: dict[bytes, CertifiedHeader] | None = None,
) -> VerifiedReceipt:
    """A receipt proven in its block's tx and results roots and in the ledger's log."""
    certified = verify_certified(answer, genesis, cache)
    header = certified.header
    receipt, proofs = _parse_receipt_answer(answer, tx_hash)
    short = tx_hash.hex()[:16]
    if receipt.tx_hash != tx_hash or answer.get("hash", tx_hash) != tx_hash:
        raise VerificationError(f"transaction {short}…: the node answered with another transaction")
    if receipt.height != header.height:
        raise VerificationError(
            f"transaction {short}…: receipt height differs from its certified header"
        )
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
            raise VerificationError(
                f"transaction {short}…: {name} is for leaf {proof.leaf_index} of "
                f"{proof.tree_size}, expected {index} of {size}"
            )
        try:
            proof.verify(leaf, getattr(header, root_name))
        except ProofError as exc:
            raise VerificationError(
                f"transaction {short}…: not in block {header.height}'s {root_name}: {exc}"
            ) from None
    return VerifiedReceipt(receipt, certified, log_index)


def _parse_receipt_answer(
    answer: Value, tx_hash: bytes
) -> tuple[Receipt, dict[str, InclusionProof]]:
    """The receipt and its three inclusion proofs; redacted or malformed ones fail."""
    stub = answer_field(answer, "receipt", "the receipt answer")
    if isinstance(stub, dict) and stub.get("redacted") is True:
        raise RedactedError(
            f"the node shows transaction {tx_hash.hex()[:16]}…'s receipt only to readers the "
            "read rules allow: give --key with a member key of a party to it (or an auditor's)"
        )
    try:
        receipt = Receipt.from_obj(stub)
        proofs = {
            name: InclusionProof.from_obj(answer_field(answer, name, "the receipt answer"))
            for name in PROOF_NAMES
        }
    except LedgerError as exc:
        raise VerificationError(
            f"transaction {tx_hash.hex()}: malformed receipt answer: {exc}"
        ) from None
    return receipt, proofs
