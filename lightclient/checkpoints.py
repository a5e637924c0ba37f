"""Checkpoints a city publishes (docs/audit.md), and proof that a ledger extends one.

A checkpoint is a certified header with its log size and root, optionally signed
with ``Purpose.CHECKPOINT``. One RFC 6962 consistency proof between the
checkpoint's log and a newer certified log shows that no transaction of the
checkpoint was removed, reordered or altered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.block import BlockHeader
from ledger.crypto import Purpose, verify
from ledger.encoding import Value, decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.merkle import ConsistencyProof
from ledger.votes import CommitCertificate
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader, NoHistory, check_certificate, verify_certified

CHECKPOINT_VERSION = 1


def checkpoint_document(
    header: BlockHeader, cert: CommitCertificate, genesis_hash: bytes
) -> dict[str, Any]:
    """The unsigned checkpoint of a certified header, as published (JSON-ready)."""
    return {
        "cityledger_checkpoint": CHECKPOINT_VERSION,
        "chain_id": header.chain_id,
        "genesis_hash": genesis_hash.hex(),
        "height": header.height,
        "block_hash": header.hash.hex(),
        "time_ms": header.time_ms,
        "log_size": header.log_size,
        "log_root": header.log_root.hex(),
        "header": encode(header.to_obj()).hex(),
        "certificate": cert.encode().hex(),
    }


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    """The canonical bytes a checkpoint signature covers (docs/audit.md)."""
    return encode(
        {
            "block_hash": bytes.fromhex(cp["block_hash"]),
            "chain_id": cp["chain_id"],
            "genesis_hash": bytes.fromhex(cp["genesis_hash"]),
            "height": cp["height"],
            "log_root": bytes.fromhex(cp["log_root"]),
            "log_size": cp["log_size"],
        }
    )


def read_checkpoint(cp: Any, genesis: Genesis) -> tuple[CertifiedHeader, dict[str, Any]]:
    """Check a checkpoint document: format, signature (if any), certificate, fields."""
    if not isinstance(cp, dict) or cp.get("cityledger_checkpoint") != CHECKPOINT_VERSION:
        raise VerificationError(f"not a CityLedger checkpoint (version {CHECKPOINT_VERSION})")
    try:
        header = BlockHeader.from_obj(decode(bytes.fromhex(cp["header"])))
        cert = CommitCertificate.from_obj(decode(bytes.fromhex(cp["certificate"])))
        fields = {
            "chain_id": header.chain_id,
            "genesis_hash": genesis.hash.hex(),
            "height": header.height,
            "block_hash": header.hash.hex(),
            "log_size": header.log_size,
            "log_root": header.log_root.hex(),
        }
        if cp.get("signature") is not None:
            verify(
                bytes.fromhex(cp["signer"]),
                Purpose.CHECKPOINT,
                genesis.chain_id,
                checkpoint_message(cp),
                bytes.fromhex(cp["signature"]),
            )
    except (KeyError, ValueError, TypeError, LedgerError) as exc:
        raise VerificationError(
            f"the checkpoint is malformed or its signature is bad: {exc}"
        ) from None
    for name, value in fields.items():
        if cp.get(name) != value:
            raise VerificationError(f"the checkpoint's {name} does not match its header")
    return check_certificate(header, cert, genesis), cp


def verify_extension(
    answer: Value, old: CertifiedHeader, genesis: Genesis
) -> tuple[CertifiedHeader, ConsistencyProof]:
    """A ``/v1/log/consistency`` answer proves its certified log extends ``old``'s.

    Raises a :class:`~ledger.errors.LedgerError` (a malformed or failing proof, or a
    :class:`VerificationError`) when it does not.
    """
    new = verify_certified(answer, genesis)
    proof = ConsistencyProof.from_obj(answer.get("proof"))
    if new.height < old.height:
        raise VerificationError(f"the node is at height {new.height}, behind the checkpoint")
    if (proof.old_size, proof.new_size) != (old.header.log_size, new.header.log_size):
        raise VerificationError("the proof is not between the two certified log sizes")
    proof.verify(old.header.log_root, new.header.log_root)
    return new, proof


@dataclass(frozen=True, slots=True)
class ExtensionView(NoHistory):
    """Today's certified header, proven to extend the checkpoint's log by ``proof``."""

    certified: CertifiedHeader
    old: CertifiedHeader
    proof: ConsistencyProof


def read_extension(answer: Value, old: CertifiedHeader, genesis: Genesis) -> ExtensionView:
    """:func:`verify_extension` as a view; every failure a :class:`VerificationError`."""
    try:
        new, proof = verify_extension(answer, old, genesis)
    except VerificationError:
        raise
    except LedgerError as exc:
        raise VerificationError(
            f"today's ledger does not provably extend the checkpoint: {exc}"
        ) from None
    return ExtensionView(new, old, proof)
