"""``cityledger proof export|verify``: self-contained proof bundles, checked offline.

A bundle (:mod:`lightclient.bundles`, docs/audit.md) holds exactly what a node
answered, with every proof. ``export`` refuses to write one that would not
verify; ``verify`` needs nothing but the bundle and the genesis file: it runs the
same checks as ``shipment provenance`` / ``permit show`` / ``tx show`` on the
bundled bytes.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from cli.client import genesis_option, system_ms
from cli.options import json_option
from cli.output import console, fail, print_json, record_json
from cli.read_source import Source, source_options
from cli.render import fmt_time, permit_view, receipt_view, shipment_view
from cli.shipment_cmd import gather_shipment, view_json
from cli.verified_reads import (
    FINAL,
    freshness_json,
    freshness_text,
)
from contracts.permits import permit_valid_at
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import Freshness, Verified, describe_age, verify_answer
from lightclient.bundles import KINDS, BundleView, check_bundle, make_bundle, open_bundle
from lightclient.errors import VerificationError
from lightclient.permits import PermitView
from lightclient.shipments import ShipmentView


@click.group()
def proof() -> None:
    """Export a record with all its proofs; verify such a bundle offline."""


@proof.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("ident", metavar="ID")
@source_options("Member key that signs the read (needed for shipments).")
@click.option("--out", type=click.File("w"), default="-", help="Bundle file (default: stdout).")
def export(kind: str, ident: str, source: Source, out: Any) -> None:
    """Download KIND ID (shipment, permit or tx hash) with every proof into one bundle."""
    reads = source.reads()
    client, genesis = reads.client, reads.genesis
    receipts: dict[bytes, dict[str, Value]] = {}
    freshness = reads.current()
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
        freshness = reads.any_age(FINAL)
    bundle = make_bundle(kind, ident, genesis, answer, receipts, exported_ms=system_ms())
    # never hand out a bundle that would not verify
    reads.accept(lambda: check_bundle(open_bundle(bundle, genesis), genesis), freshness)
    out.write(json.dumps(bundle, indent=2) + "\n")


@proof.command()
@click.argument("bundle_file", metavar="BUNDLE", type=click.File("r"))
@genesis_option()
@json_option()
def verify(bundle_file: Any, genesis_path: str, as_json: bool) -> None:
    """Check a bundle offline against the genesis file; exit 1 if anything fails.

    A bundle is an answer as it was when exported: the output says how old its
    certified block is.
    """
    genesis = Genesis.load(genesis_path)
    try:
        doc = json.load(bundle_file)
    except ValueError as exc:
        fail(f"{bundle_file.name} is not JSON: {exc}")
    try:
        evidence = open_bundle(doc, genesis)
        verified = verify_answer(
            lambda: check_bundle(evidence, genesis),
            genesis,
            None,
            Freshness.any_age(system_ms(), "a saved bundle (checked offline)"),
        )
    except VerificationError as exc:
        fail(f"REFUSED: the bundle does not check out: {exc}")
    _report(evidence, verified, doc.get("exported_ms"), as_json)


def _report(
    evidence: dict[str, Value], verified: Verified[BundleView], exported: Any, as_json: bool
) -> None:
    kind, view = evidence["kind"], verified.view
    if as_json:
        out: dict[str, Any] = {"kind": kind, "id": evidence["id"], **freshness_json(verified)}
        if isinstance(view, ShipmentView):
            out |= view_json(view)
        elif isinstance(view, PermitView):
            out["permit"] = record_json(view.permit)
        else:
            out["receipt"] = view.receipt.to_obj()
        print_json(out | {"bundle_age_ms": verified.age_ms, "exported_ms": exported})
        return
    at = verified.time_ms
    if isinstance(view, ShipmentView):
        console.print(shipment_view(view))
    elif isinstance(view, PermitView):
        valid, reason = permit_valid_at(view.permit, at)
        console.print(permit_view(view, at, valid, f"{reason} (at the bundle's block)"))
    else:
        console.print(receipt_view(view.receipt, at))
    console.print(freshness_text(verified))
    exported_text = fmt_time(exported) if isinstance(exported, int) else "an unstated time"
    console.print(
        f"  checked offline: the bundle proves this as of height {verified.height}, "
        f"{describe_age(verified.age_ms)} ago (it says it was exported at {exported_text}); "
        "anything after that block is not in it"
    )
