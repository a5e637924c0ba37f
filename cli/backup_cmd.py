"""``cityledger node backup|restore``: a consistent backup of a node home, the node
running or not, and putting one back (docs/operations.md, "Backups"; node/backup.py).

- running node: the request goes through the home (a request file and SIGUSR1 to the
  pid in ``node.pid``); the node writes the backup from a LevelDB snapshot while it
  keeps committing, and this command waits for its answer;
- stopped node: the store is read through a private copy (LevelDB rewrites a store it
  opens), under the store's lock so the node cannot start meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict

import click

from cli.leftovers import remove_leftovers_and_say
from cli.node_cmd import _running_node
from cli.output import console, err_console, fail, print_json
from ledger.genesis import Genesis
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.snapshot import private_copy
from node.backup import (
    BACKUP_SIGNAL,
    MANIFEST_FILE,
    BackupResult,
    read_result,
    write_backup,
    write_request,
)
from node.config import Home

POLL_S = 0.2


@click.command("backup")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(), help="A new directory for the backup.")
@click.option(
    "--timeout",
    default=3600.0,
    show_default=True,
    help="Seconds to wait for a running node's answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backup(home: str, out: str, timeout: float, as_json: bool) -> None:
    """Back up a node home (running or stopped): every row of one committed height,
    genesis, config, the sealed node key and TLS files; not the signer state."""
    h = Home(home)
    if os.path.lexists(out):
        fail(f"{out} already exists: a backup goes into a new directory")
    pid = _running_node(h)
    result = _ask_running(h, pid, out, timeout) if pid is not None else _offline(h, out)
    if not result.ok:
        fail(f"backup failed: {result.error}")
    if as_json:
        print_json(asdict(result))
        return
    how = f"from the running node (pid {pid})" if pid is not None else "from the stopped node"
    console.print(
        f"[green]✔[/] backup of height {result.height} written to {result.out} {how}: "
        f"{result.rows:,} rows, {result.bytes / 1e6:.1f} MB, {result.seconds:.1f} s"
    )


def _ask_running(h: Home, pid: int, out: str, timeout: float) -> BackupResult:
    request_id = write_request(h, out)
    os.kill(pid, BACKUP_SIGNAL)
    deadline = time.monotonic() + timeout
    with err_console.status(f"the node (pid {pid}) is writing the backup ..."):
        while time.monotonic() < deadline:
            result = read_result(h, request_id)
            if result is not None:
                return result
            if _running_node(h) != pid:
                fail(f"the node (pid {pid}) stopped before it answered; nothing was written")
            time.sleep(POLL_S)
    fail(f"no answer from the node (pid {pid}) within {timeout:.0f} s; see its log")


def _offline(h: Home, out: str) -> BackupResult:
    remove_leftovers_and_say()
    with private_copy(h.data) as copy:
        store = LevelDBStore(copy)
        try:
            return write_backup(store, h, out)
        finally:
            store.close()


@click.command("restore")
@click.option("--home", required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="A directory written by `cityledger node backup`.",
)
def restore(home: str, source: str) -> None:
    """Put a backup's store into a stopped node's home (the current one is kept aside)."""
    h = Home(home)
    if _running_node(h) is not None:
        fail("the node is running: stop it first (restoring replaces its store)")
    manifest = _manifest(source)
    genesis = Genesis.load(h.genesis)
    if manifest.get("genesis_hash") != genesis.hash.hex():
        fail(
            f"genesis mismatch: the backup is of chain {manifest.get('genesis_hash')}, "
            f"this home's genesis is {genesis.hash.hex()}"
        )
    kept = None
    if os.path.exists(h.data):
        kept = f"{h.data}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
        os.rename(h.data, kept)
    shutil.copytree(os.path.join(source, "data"), h.data)
    os.chmod(h.data, 0o700)
    console.print(
        f"[green]✔[/] restored the store of height {manifest.get('height')} into {h.data}"
        + (f"; the previous one is kept at {kept}" if kept else "")
    )
    console.print(
        "Start the node: it catches up from its peers. Keep this home's signer_state.msgpack "
        "(a backup has none); on a new host start once with --reset-signer-state."
    )


def _manifest(source: str) -> dict[str, object]:
    path = os.path.join(source, MANIFEST_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        fail(f"{source} is not a backup written by `cityledger node backup` ({exc})")
    if not isinstance(doc, dict) or not os.path.isdir(os.path.join(source, "data")):
        fail(f"{source} is not a complete backup (no {MANIFEST_FILE} or no data/)")
    return doc
