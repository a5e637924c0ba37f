"""Self-contained proof bundles (docs/audit.md), checked offline against the genesis file.

A bundle is a JSON document whose ``evidence`` field is the base64 of one canonical
msgpack document holding exactly what a node answered: the record answer (records,
state proofs, header, certificate), the receipt answers that prove each history
transaction (block, results and log inclusion proofs with their certified headers),
the validator set and the genesis hash. Checking one needs nothing but the bundle
and the genesis file: the same checks as for a live answer, on the bundled bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ledger.encoding import Value, decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from lightclient.errors import GenesisMismatch, VerificationError
from lightclient.history import verify_provenance
from lightclient.permits import PermitView, verify_permit
from lightclient.receipts import VerifiedReceipt, verify_receipt
from lightclient.shipments import ShipmentView
from lightclient.validator_history import known_history, remember, verify_history

BUNDLE_VERSION = 1
KINDS = ("shipment", "permit", "tx")


def make_bundle(
    kind: str,
    ident: str,
    genesis: Genesis,
    answer: dict[str, Value],
    receipts: dict[bytes, dict[str, Value]],
    *,
    exported_ms: int,
) -> dict[str, Any]:
    """The bundle of a node's answer (and the receipts it relies on), exported at a time."""
    evidence = {
        "kind": kind,
        "id": ident,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash,
        "validators": genesis.validators.to_obj(),
        # the certified set changes up to now: the bundle checks offline after any change
        "validator_history": known_history(genesis).to_obj(),
        "answer": answer,
        "receipts": [[h, r] for h, r in sorted(receipts.items())],
    }
    header = answer["header"]
    return {
        "cityledger_bundle": BUNDLE_VERSION,
        "kind": kind,
        "id": ident,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash.hex(),
        "height": header["height"],
        "exported_ms": exported_ms,
        "evidence": base64.b64encode(encode(evidence)).decode("ascii"),
    }


def open_bundle(doc: Any, genesis: Genesis) -> dict[str, Value]:
    """The bundle's evidence, once it is known to be for this genesis."""
    if not isinstance(doc, dict) or doc.get("cityledger_bundle") != BUNDLE_VERSION:
        raise VerificationError(f"not a CityLedger proof bundle (version {BUNDLE_VERSION})")
    try:
        evidence = decode(base64.b64decode(doc["evidence"], validate=True))
    except (KeyError, TypeError, binascii.Error, LedgerError) as exc:
        raise VerificationError(f"the bundle's evidence is not canonical msgpack: {exc}") from None
    if not isinstance(evidence, dict) or evidence.get("kind") not in KINDS:
        raise VerificationError("the bundle's evidence is malformed")
    theirs = evidence.get("genesis_hash")
    if theirs != genesis.hash or evidence.get("chain_id") != genesis.chain_id:
        raise GenesisMismatch(
            "the bundle was made for another chain or genesis than this file",
            genesis.hash,
            theirs if isinstance(theirs, bytes) else None,
        )
    if evidence.get("validators") != genesis.validators.to_obj():
        raise VerificationError("the bundle's validator set differs from the genesis file's")
    for name in ("kind", "id"):
        if doc.get(name) != evidence.get(name):
            raise VerificationError(f"the bundle's {name} differs from its evidence's")
    remember(verify_history(evidence.get("validator_history", []), genesis))
    return evidence


BundleView = ShipmentView | PermitView | VerifiedReceipt


def check_bundle(evidence: dict[str, Value], genesis: Genesis) -> BundleView:
    """Run the checks for the bundle's kind on its evidence: the view it proves."""
    kind, ident, answer = evidence["kind"], evidence["id"], evidence["answer"]
    receipts = {h: r for h, r in evidence.get("receipts", [])}
    if kind == "shipment":
        return verify_provenance(answer, receipts, genesis, ident)
    if kind == "permit":
        return verify_permit(answer, genesis, ident)
    try:
        tx_hash = bytes.fromhex(ident)
    except ValueError:
        raise VerificationError("the bundle's id is not a transaction hash") from None
    return verify_receipt(answer, genesis, tx_hash)
