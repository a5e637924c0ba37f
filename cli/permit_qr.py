"""``cityledger permit qr ID --out FILE.svg|png [--print-url]``: the code a city prints on
the site notice. It opens the permit's explorer page on the node at ``--node`` (the
node's API URL as the public reaches it) with the chain's genesis hash in the link, so
the page refuses a node of another chain (docs/explorer.md). Made offline from the
genesis file: nothing is asked of the node, and the code says nothing about whether the
permit is valid — the page checks that when it is opened.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import click

from cli.client import DEFAULT_NODE, genesis_option
from cli.output import fail
from contracts.codes import is_record_id
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from node.api.explorer_link import permit_page_url, qr_bytes

KINDS = {".svg": "svg", ".png": "png"}


@click.command()
@click.argument("permit_id", metavar="ID")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the QR code here: FILE.svg or FILE.png.",
)
@click.option("--print-url", is_flag=True, help="Print the URL the code opens.")
@click.option(
    "--node",
    default=DEFAULT_NODE,
    show_default=True,
    envvar="CITYLEDGER_NODE",
    help="The node's public API URL (https for phones). Env: CITYLEDGER_NODE.",
)
@genesis_option()
def qr(permit_id: str, out: str | None, print_url: bool, node: str, genesis_path: str) -> None:
    """The QR code of permit ID's explorer page, which verifies the permit in a browser."""
    if out is None and not print_url:
        fail("give --out FILE.svg|png, --print-url, or both")
    if not is_record_id(permit_id):
        fail(f"{permit_id!r} is not a permit id (letters, digits, '.', '_', '-'; up to 64)")
    parsed = urllib.parse.urlsplit(node)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        fail(f"--node must be an http(s) URL like {DEFAULT_NODE}, got {node!r}")
    kind = KINDS.get(Path(out).suffix.lower()) if out is not None else None
    if out is not None and kind is None:
        fail(f"--out must end in .svg or .png, got {out!r}")
    try:
        genesis = Genesis.load(genesis_path)
    except LedgerError as exc:
        fail(str(exc))
    url = permit_page_url(node, permit_id, genesis.hash)
    if out is not None and kind is not None:
        try:
            Path(out).write_bytes(qr_bytes(url, kind))
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}")
    if print_url:
        click.echo(url)
