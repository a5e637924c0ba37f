"""``cityledger proof export|verify``: self-contained proof bundles, checked offline.

A bundle is a JSON file (docs/audit.md) whose ``evidence`` field is the base64 of
one canonical msgpack document holding exactly what a node answered: the record
answer (records, state proofs, header, certificate), the receipt answers that
prove each history transaction (block, results and log inclusion proofs with
their certified headers), the validator set and the genesis hash. ``verify``
needs nothing but the bundle and the genesis file: it runs the same checks as
``shipment provenance`` / ``permit show`` / ``tx show`` on the bundled bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import urllib.parse
from typing import Any

import click

from cli.client import NodeClient, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.output import console, fail, print_json
from cli.render import permit_view, receipt_view, shipment_view, verified_line
from cli.shipment_cmd import gather_shipment, view_json
from cli.verify import (
    CertifiedHeader,
    VerificationError,
    verify_permit,
    verify_provenance,
    verify_receipt,
)
from contracts.permits import effective_status
from ledger.encoding import Value, decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis

BUNDLE_VERSION = 1
KINDS = ("shipment", "permit", "tx")


def make_bundle(
    kind: str,
    ident: str,
    genesis: Genesis,
    answer: dict[str, Value],
    receipts: dict[bytes, dict[str, Value]],
) -> dict[str, Any]:
    evidence = {
        "kind": kind,
        "id": ident,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash,
        "validators": genesis.validators.to_obj(),
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
        "exported_ms": time.time_ns() // 1_000_000,
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
    if evidence.get("genesis_hash") != genesis.hash or evidence.get("chain_id") != genesis.chain_id:
        raise VerificationError("the bundle was made for another chain or genesis than this file")
    if evidence.get("validators") != genesis.validators.to_obj():
        raise VerificationError("the bundle's validator set differs from the genesis file's")
    for name in ("kind", "id"):
        if doc.get(name) != evidence.get(name):
            raise VerificationError(f"the bundle's {name} differs from its evidence's")
    return evidence


def check_bundle(evidence: dict[str, Value], genesis: Genesis) -> tuple[CertifiedHeader, Any]:
    """Run the checks for the bundle's kind on its evidence; (certified header, view)."""
    kind, ident, answer = evidence["kind"], evidence["id"], evidence["answer"]
    receipts = {h: r for h, r in evidence.get("receipts", [])}
    if kind == "shipment":
        view = verify_provenance(answer, receipts, genesis, ident)
        return view.certified, view
    if kind == "permit":
        pview = verify_permit(answer, genesis, ident)
        return pview.certified, pview
    try:
        tx_hash = bytes.fromhex(ident)
    except ValueError:
        raise VerificationError("the bundle's id is not a transaction hash") from None
    verified = verify_receipt(answer, genesis, tx_hash)
    return verified.certified, verified


@click.group()
def proof() -> None:
    """Export a record with all its proofs; verify such a bundle offline."""


@proof.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("ident", metavar="ID")
@node_option()
@genesis_option()
@key_option(help_text="Member key that signs the read (needed for shipments).")
@click.option("--out", type=click.File("w"), default="-", help="Bundle file (default: stdout).")
def export(
    kind: str, ident: str, node: str, genesis_path: str, key_path: str | None, out: Any
) -> None:
    """Download KIND ID (shipment, permit or tx hash) with every proof into one bundle."""
    genesis = Genesis.load(genesis_path)
    client = NodeClient(
        node, key=load_key(key_path) if key_path else None, chain_id=genesis.chain_id
    )
    receipts: dict[bytes, dict[str, Value]] = {}
    if kind == "shipment":
        evidence = gather_shipment(client, ident)
        answer, receipts = evidence.answer, evidence.receipts
    elif kind == "permit":
        answer = client.get(f"/v1/permits/{urllib.parse.quote(ident, safe='')}")
    else:
        if len(ident) != 64 or any(c not in "0123456789abcdefABCDEF" for c in ident):
            fail("a transaction is named by its 32-byte hash in hex")
        ident = ident.lower()
        answer = client.get(f"/v1/txs/{ident}")
    bundle = make_bundle(kind, ident, genesis, answer, receipts)
    try:  # never hand out a bundle that would not verify
        check_bundle(open_bundle(bundle, genesis), genesis)
    except VerificationError as exc:
        fail(f"REFUSED: the answer from {client.url} does not check out: {exc}")
    out.write(json.dumps(bundle, indent=2) + "\n")


@proof.command()
@click.argument("bundle_file", metavar="BUNDLE", type=click.File("r"))
@genesis_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(bundle_file: Any, genesis_path: str, as_json: bool) -> None:
    """Check a bundle offline against the genesis file; exit 1 if anything fails."""
    genesis = Genesis.load(genesis_path)
    try:
        doc = json.load(bundle_file)
    except ValueError as exc:
        fail(f"{bundle_file.name} is not JSON: {exc}")
    try:
        evidence = open_bundle(doc, genesis)
        certified, view = check_bundle(evidence, genesis)
    except VerificationError as exc:
        fail(f"REFUSED: the bundle does not check out: {exc}")
    kind = evidence["kind"]
    if as_json:
        out: dict[str, Any] = {
            "kind": kind,
            "id": evidence["id"],
            "verified": True,
            "height": certified.height,
            "verified_by": list(certified.signers),
        }
        if kind == "shipment":
            out |= view_json(view)
        elif kind == "permit":
            out["permit"] = view.permit
        else:
            out["receipt"] = view.receipt.to_obj()
        print_json(out)
        return
    if kind == "shipment":
        console.print(shipment_view(view))
    elif kind == "permit":
        at = certified.header.time_ms
        status = effective_status(view.permit, at)
        console.print(permit_view(view, at, status == "issued", f"{status} at the bundle's block"))
    else:
        console.print(receipt_view(view.receipt, certified.header.time_ms))
    console.print(verified_line(certified))
    console.print(
        "  checked offline: every record and transaction in the bundle is proven "
        "against certified headers"
    )
