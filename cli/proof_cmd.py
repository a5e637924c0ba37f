"""``cityledger proof export|verify``: self-contained proof bundles, checked offline.

A bundle (:mod:`lightclient.bundles`, docs/audit.md) holds exactly what a node
answered, with every proof. ``export`` refuses to write one that would not
verify; ``verify`` needs nothing but the bundle and the genesis file: it runs the
same checks as ``shipment provenance`` / ``permit show`` / ``tx show`` on the
bundled bytes.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import click

from cli.client import NodeClient, genesis_option, node_option
from cli.keys_cmd import key_option, load_key
from cli.output import console, fail, print_json, record_json
from cli.render import permit_view, receipt_view, shipment_view, verified_line
from cli.shipment_cmd import gather_shipment, view_json
from contracts.permits import effective_status
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.bundles import KINDS, check_bundle, make_bundle, open_bundle
from lightclient.errors import VerificationError


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
    bundle = make_bundle(
        kind, ident, genesis, answer, receipts, exported_ms=time.time_ns() // 1_000_000
    )
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
            out["permit"] = record_json(view.permit)
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
