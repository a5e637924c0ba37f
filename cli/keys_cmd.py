"""``cityledger keys new|show|import``: member and node keys on disk.

Key files are the JSON documents of :mod:`ledger.keyfile`, mode 0600, sealed
with a passphrase (Argon2id + XSalsa20-Poly1305) unless ``--no-passphrase``.
The passphrase comes from a file, a systemd credential, ``CITYLEDGER_KEY_PASSPHRASE``
or a prompt (:mod:`cli.passphrase`); every other command that takes ``--key`` unlocks
the file the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import click

from cli.options import existing_file_option, json_option
from cli.output import console, fail, print_json
from cli.passphrase import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, passphrase_for, read_passphrase_file
from ledger.crypto import SEED_SIZE, PrivateKey
from ledger.errors import KeyFileError
from ledger.keyfile import is_encrypted, read_key_file, write_key_file


def load_key(path: str) -> PrivateKey:
    """Unlock a key file (passphrase as :func:`cli.passphrase.passphrase_for` finds it)."""
    return read_key_file(path, passphrase_for(path))


def public_key_of(path: str) -> bytes:
    """The public key a key file names, without unlocking it."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        key = bytes.fromhex(doc["public_key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a readable key file: {exc}") from None
    if len(key) != 32:
        raise KeyFileError(f"{path}: the public key is not 32 bytes")
    return key


def key_option(
    required: bool = False, help_text: str = "Key file (from `cityledger keys new`)."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return existing_file_option(
        "--key",
        "key_path",
        required=required,
        envvar="CITYLEDGER_KEY",
        help_text=help_text + " Env: CITYLEDGER_KEY.",
    )


def _new_passphrase(no_passphrase: bool) -> str | None:
    if no_passphrase:
        return None
    given = os.environ.get(PASSPHRASE_FILE_ENV)
    if given:
        return read_passphrase_file(given) or None
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env or None
    value: str = click.prompt(
        "Passphrase (empty for none)",
        hide_input=True,
        confirmation_prompt=True,
        default="",
        show_default=False,
        err=True,
    )
    return value or None


def _write(out: str, key: PrivateKey, no_passphrase: bool, as_json: bool) -> None:
    passphrase = _new_passphrase(no_passphrase)
    write_key_file(out, key, passphrase)
    if as_json:
        print_json({"path": out, "public_key": key.public_key, "encrypted": bool(passphrase)})
        return
    sealed = "encrypted" if passphrase else "[yellow]not encrypted[/]"
    console.print(f"wrote {out} (mode 0600, {sealed})")
    console.print(f"public key: [bold]{key.public_key.hex()}[/]")


@click.group()
def keys() -> None:
    """Create, show and import Ed25519 key files."""


@keys.command("new")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to create.")
@click.option("--no-passphrase", is_flag=True, help="Store the seed unencrypted.")
@json_option()
def new(out: str, no_passphrase: bool, as_json: bool) -> None:
    """Generate a fresh key (mode 0600; refuses to overwrite)."""
    _write(out, PrivateKey.generate(), no_passphrase, as_json)


@keys.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--check", is_flag=True, help="Also unlock the key to prove the passphrase.")
@json_option()
def show(path: str, check: bool, as_json: bool) -> None:
    """Print a key file's public key (and whether it is encrypted)."""
    public_key = public_key_of(path)
    encrypted = is_encrypted(path)
    if check:
        load_key(path)
    mode = os.stat(path).st_mode & 0o777
    if as_json:
        print_json(
            {"path": path, "public_key": public_key, "encrypted": encrypted, "mode": f"{mode:o}"}
        )
        return
    console.print(f"public key: [bold]{public_key.hex()}[/]")
    console.print(f"encrypted:  {'yes' if encrypted else 'no'}   mode: {mode:o}")
    if mode & 0o077:
        console.print(f"[yellow]warning:[/] {path} is readable by others; chmod 600 it")
    if check:
        console.print("[green]unlocked: the passphrase is right[/]")


@keys.command("import")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to create.")
@click.option(
    "--seed-file",
    type=click.File("r"),
    default="-",
    show_default=True,
    help="File (or - for stdin) holding the 32-byte Ed25519 seed as 64 hex characters.",
)
@click.option("--no-passphrase", is_flag=True, help="Store the seed unencrypted.")
@json_option()
def import_(out: str, seed_file: Any, no_passphrase: bool, as_json: bool) -> None:
    """Import an existing Ed25519 seed (hex) into a key file."""
    text = seed_file.readline().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        fail("the seed must be hex")
    if len(seed) != SEED_SIZE:
        fail(
            f"the seed must be {SEED_SIZE} bytes ({2 * SEED_SIZE} hex characters), got {len(seed)}"
        )
    _write(out, PrivateKey(seed), no_passphrase, as_json)
