"""Backups of a node home, consistent while the node runs (``cityledger node backup``).

A backup is a directory that is itself a node home minus the signer state:

    <out>/data/            a new LevelDB holding every row of one committed height
    <out>/genesis.json     copied, with config.toml, node_key.json (sealed as it is),
    <out>/config.toml      tls_key.pem and tls_cert.pem; modes kept, owner-only
    <out>/BACKUP.json      what it holds: height, block hash, rows, genesis hash, time

The rows come from a LevelDB snapshot (:meth:`LevelDBStore.snapshot_items`) taken while
the node keeps committing: every committed block is one write batch, so a snapshot holds
exactly the rows of one committed height. ``signer_state.msgpack`` is left out on
purpose: a restored validator must keep its current file (the backup's would not know
what the key signed since) or start once with ``--reset-signer-state``
(docs/operations.md, "Backups").

A running node is asked through its home, not its API: the CLI writes
``backup.request.json`` into the home and sends :data:`BACKUP_SIGNAL` to the pid in
``node.pid``; the node writes the backup from a worker thread and then
``backup.result.json``. Only whoever may write into the home can ask, and nothing of
it is reachable from the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, replace

from ledger.encoding import decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.storage import WriteBatch, keys, open_leveldb
from ledger.storage.leveldb import LevelDBStore
from node.config import Home

log = logging.getLogger("cityledger.node")
BACKUP_SIGNAL = signal.SIGUSR1
REQUEST_FILE = "backup.request.json"
RESULT_FILE = "backup.result.json"
MANIFEST_FILE = "BACKUP.json"
BATCH_BYTES = 4 * 1024 * 1024
COPIED_FILES = ("genesis.json", "config.toml", "node_key.json", "tls_key.pem", "tls_cert.pem")


class BackupError(LedgerError):
    """A backup that cannot be made (or restored); the message says why."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    request_id: str
    ok: bool
    out: str
    height: int = 0
    block_hash: str = ""
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str = ""


def write_backup(store: LevelDBStore, home: Home, out: str) -> BackupResult:
    """Write a backup of ``home`` (whose open store is ``store``) into the new directory
    ``out``; on failure nothing is left at ``out``."""
    out = os.path.abspath(out)
    if os.path.lexists(out):
        raise BackupError(f"{out} already exists: a backup goes into a new directory")
    if not os.path.isdir(os.path.dirname(out)):
        raise BackupError(f"{os.path.dirname(out)} does not exist")
    started = time.monotonic()
    os.mkdir(out, 0o700)
    try:
        rows, size, head = _copy_rows(store, os.path.join(out, "data"))
        for name in COPIED_FILES:
            source = os.path.join(home.path, name)
            if os.path.exists(source):
                shutil.copy2(source, os.path.join(out, name))
                os.chmod(os.path.join(out, name), 0o600)
        height, block_hash = _head_of(head)
        seconds = round(time.monotonic() - started, 3)
        result = BackupResult("", True, out, height, block_hash, rows, size, seconds)
        _write_json(os.path.join(out, MANIFEST_FILE), _manifest(result, home))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return result


def _copy_rows(store: LevelDBStore, target_dir: str) -> tuple[int, int, bytes | None]:
    """Copy every row of one snapshot; returns (rows, bytes, the head record copied)."""
    target = open_leveldb(target_dir, create=True)
    rows = size = pending = 0
    head = None
    batch = WriteBatch()
    try:
        for key, value in store.snapshot_items():
            batch.put(key, value)
            rows += 1
            pending += len(key) + len(value)
            if key == keys.HEAD:
                head = value
            if pending >= BATCH_BYTES:
                target.write(batch, sync=False)
                size, pending, batch = size + pending, 0, WriteBatch()
        target.write(batch, sync=True)  # durable, with every batch before it
        return rows, size + pending, head
    finally:
        target.close()


def _head_of(raw: bytes | None) -> tuple[int, str]:
    """(height, block hash hex) of a stored head record (0, "" for an empty chain)."""
    if raw is None:
        return 0, ""
    head = decode(raw)
    assert isinstance(head, dict)
    return int(head["height"]), bytes(head["block_hash"]).hex()


def _manifest(result: BackupResult, home: Home) -> dict[str, object]:
    return {
        "format": 1,
        "height": result.height,
        "block_hash": result.block_hash,
        "rows": result.rows,
        "bytes": result.bytes,
        "genesis_hash": Genesis.load(home.genesis).hash.hex(),
        "source": home.path,
        "created_ms": int(time.time() * 1000),
    }


def _write_json(path: str, doc: object) -> None:
    """Write atomically (a reader never sees half a file)."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


# --- the running node's side -----------------------------------------------------------------


def read_request(home: Home) -> tuple[str, str]:
    """(request id, output directory) of the pending request in ``home``."""
    try:
        with open(os.path.join(home.path, REQUEST_FILE), encoding="utf-8") as f:
            doc = json.load(f)
        return str(doc["id"]), str(doc["out"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"no readable backup request in {home.path}: {exc}") from None


def answer_request(store: LevelDBStore, home: Home) -> BackupResult:
    """Make the backup the home's request file asks for; write and return the result."""
    request_id = ""
    try:
        request_id, out = read_request(home)
        result = replace(write_backup(store, home, out), request_id=request_id)
    except (LedgerError, OSError) as exc:
        result = BackupResult(request_id, False, "", error=str(exc))
    _write_json(os.path.join(home.path, RESULT_FILE), asdict(result))
    return result


def write_request(home: Home, out: str) -> str:
    """The CLI's side: a new request in ``home``; returns its id."""
    request_id = f"{os.getpid()}-{time.time_ns()}"
    _write_json(
        os.path.join(home.path, REQUEST_FILE), {"id": request_id, "out": os.path.abspath(out)}
    )
    return request_id


def read_result(home: Home, request_id: str) -> BackupResult | None:
    """The node's answer to request ``request_id``, once it is there."""
    try:
        with open(os.path.join(home.path, RESULT_FILE), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("request_id") != request_id:
        return None
    return BackupResult(**doc)


class BackupWorker:
    """Answers :data:`BACKUP_SIGNAL` in a running node: one backup at a time, in a worker
    thread (the event loop keeps running consensus), finished before the store closes."""

    def __init__(self, store: LevelDBStore, home: Home) -> None:
        self.store = store
        self.home = home
        self.task: asyncio.Future[BackupResult] | None = None

    def requested(self) -> None:
        if self.task is not None and not self.task.done():
            log.warning("a backup is already being written; this request waits for none")
            return
        log.info("backup requested through %s", os.path.join(self.home.path, REQUEST_FILE))
        self.task = asyncio.ensure_future(asyncio.to_thread(self._answer))

    def _answer(self) -> BackupResult:
        result = answer_request(self.store, self.home)
        if result.ok:
            log.info(
                "backup of height %d written to %s: %d rows, %.1f s",
                result.height,
                result.out,
                result.rows,
                result.seconds,
            )
        else:
            log.error("backup failed: %s", result.error)
        return result

    async def finish(self) -> None:
        """Wait for a backup being written (called before the store closes)."""
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task
