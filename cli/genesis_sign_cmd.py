"""``cityledger genesis sign|add-signature``: the founders sign the draft, in parallel.

``sign`` signs the draft's hash with this agency's admin key: in place (the file then
goes on to the next agency), or with ``--out`` into a detached signature file, leaving
the draft untouched, so every agency signs its own copy at the same time and sends
back a few hundred bytes. ``add-signature`` (the coordinator) adds detached
signatures in any order; each is checked first, and one bad file adds nothing.
docs/operations.md ("Founding a network"), docs/formats.md §7.3.
"""

from __future__ import annotations

import os

import click

from cli.keys_cmd import load_key
from cli.options import existing_file_option
from cli.output import console, fail
from ledger.founding import GenesisFile
from ledger.founding_detached import add_detached, detached_json


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


@click.command("sign")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@existing_file_option("--key", "key_path", required=True, help_text="This agency's admin key.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the signature to this file (for `genesis add-signature`) and leave PATH as it is.",
)
def sign(path: str, key_path: str, out: str | None) -> None:
    """Sign the genesis hash with this agency's admin key: into the file (in place), or
    into a detached signature file with --out."""
    if out is not None and os.path.exists(out):
        fail(f"{out} already exists; refusing to overwrite it")
    file = GenesisFile.load(path)
    key = load_key(key_path)
    signed = file.signed_by(key)
    mine = next(s for s in signed.signatures if s.public_key == key.public_key)
    digest = file.genesis.hash.hex()
    if out is None:
        signed.save(path)
        _say(f"{mine.org} signed genesis {digest} in {path}")
        return
    with open(out, "x", encoding="utf-8") as f:
        f.write(detached_json(mine, file.genesis))
    _say(f"{mine.org} signed genesis {digest}: wrote {out} (send it to the coordinator)")


@click.command("add-signature")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.argument("signatures", nargs=-1, required=True, type=click.Path(dir_okay=False))
def add_signature(path: str, signatures: tuple[str, ...]) -> None:
    """Add founders' detached signatures (from `genesis sign --out`) to the genesis file,
    in any order; all are checked before the file is written."""
    file, orgs = add_detached(GenesisFile.load(path), list(signatures))
    file.save(path)
    for org, source in zip(orgs, signatures, strict=True):
        _say(f"added the signature of {org} ({source})")
    _say(f"{path}: {len(file.signatures)} signature(s); check it with `cityledger genesis verify`")
