"""What a joining node checks in a snapshot's description before it asks for a chunk, and
the rows it writes once every chunk has checked out (node/statesync.py fetches them).

A description (node/snapshots.py, :func:`node.snapshots.describe`) is trusted for nothing:

1. the validator-set changes it carries are checked from the genesis set on, each by the
   set before it (:func:`lightclient.validator_history.verify_history`, the light
   client's own check);
2. the certificate of height H must carry more than 2/3 of the power of the set those
   changes put in force at H, for exactly the header it comes with;
3. the Merkle log's right border must fold into the header's ``log_root`` and size;
4. the state manifest must hang from the header's ``state_root``
   (:func:`ledger.state_snapshot.read_manifest`).

After that every chunk is checked against the manifest alone. The node then holds the
state, log border, validator sets and head of H, and block sync goes on from H + 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from contracts.engine import genesis_state
from contracts.validator_state import current_set, next_set
from ledger.block import BlockHeader
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, LedgerError, StorageError
from ledger.genesis import Genesis
from ledger.log import border_root, border_rows
from ledger.state import StateTree
from ledger.state_snapshot import Manifest, SnapshotError, manifest_rows, read_manifest
from ledger.storage import KVStore, WriteBatch, keys
from ledger.storage.format import stamp_format
from ledger.storage.memory import MemoryStore
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from lightclient.errors import VerificationError
from lightclient.validator_history import ValidatorHistory, verify_history
from node.chain import put_head, put_validator_change
from node.wire import MAX_SNAP_PART

STATE_BASE = keys.STATE_BASE
STATE_SYNC_PARTIAL = keys.STATE_SYNC_PARTIAL
BASE_HEADER = keys.BASE_HEADER


@dataclass(frozen=True, slots=True)
class Description:
    """A snapshot's description, checked from genesis."""

    height: int
    header: BlockHeader
    cert: CommitCertificate
    history: ValidatorHistory
    log_border: tuple[tuple[int, bytes], ...]
    manifest: Manifest


def check_description(data: bytes, genesis: Genesis, height: int) -> Description:
    """The description of the snapshot at ``height`` in ``data``, checked (module
    docstring); :class:`SnapshotError` with one line saying what does not check out."""
    obj = _map(data)
    try:
        header = BlockHeader.from_obj(obj["header"])
        cert = CommitCertificate.from_obj(obj["certificate"])
        border = _border(obj["log"])
        manifest_bytes = obj["manifest"]
    except (LedgerError, KeyError, TypeError, ValueError):
        raise SnapshotError(f"the description of snapshot {height} is malformed") from None
    if obj.get("height") != height or header.height != height:
        raise SnapshotError(f"the description is of height {header.height}, not {height}")
    if header.chain_id != genesis.chain_id:
        raise SnapshotError(f"the snapshot is of chain {header.chain_id!r}")
    try:
        history = verify_history(obj.get("history", []), genesis)
        cert.verify(history.at(height), genesis.chain_id, height=height, block_hash=header.hash)
    except (VerificationError, LedgerError) as exc:
        raise SnapshotError(
            f"the certificate of height {height} does not verify from genesis: {exc}"
        ) from None
    try:
        size, root = border_root(border)
    except LedgerError as exc:
        raise SnapshotError(f"the log border is malformed: {exc}") from None
    if (size, root) != (header.log_size, header.log_root):
        raise SnapshotError(f"the log border does not match the log root of height {height}")
    if not isinstance(manifest_bytes, bytes):
        raise SnapshotError("the manifest is not bytes")
    manifest = read_manifest(manifest_bytes, header.state_root)
    return Description(height, header, cert, history, border, manifest)


def _border(items: object) -> tuple[tuple[int, bytes], ...]:
    if not isinstance(items, list) or len(items) > 64:
        raise TypeError("a log border is a list of at most 64 [level, hash]")
    out = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2):
            raise TypeError("a log border entry is [level, hash]")
        level, h = item
        if not isinstance(level, int) or not isinstance(h, bytes):
            raise TypeError("a log border entry is [level, hash]")
        out.append((level, h))
    return tuple(out)


def _map(data: bytes) -> dict[str, object]:
    if not data:
        raise SnapshotError("the peer no longer holds this snapshot")
    try:
        obj = decode(data, max_size=MAX_SNAP_PART)
    except DecodeError as exc:
        raise SnapshotError(f"the description does not decode: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != 1:
        raise SnapshotError("the description is not a format-1 map")
    return obj


def start_rows(height: int) -> WriteBatch:
    """The marker written before the first chunk: a store holding it is unfinished."""
    batch = WriteBatch()
    batch.put(STATE_SYNC_PARTIAL, height.to_bytes(8, "big"))
    return batch


def base_rows(store: KVStore, d: Description, genesis: Genesis) -> WriteBatch:
    """Everything but the chunks: the skeleton, the log border, the validator sets in
    force at H, H+1 and H+2, the certificate and header of H, the head, and the chain's
    identity rows. ``store`` already holds every chunk (the sets of H+1 and H+2 are read
    from the state, checked against the certified root)."""
    batch = manifest_rows(d.manifest, d.height)
    for key, value in border_rows(d.log_border):
        batch.put(key, value)
    for change in d.history.changes:
        put_validator_change(batch, change.height, change.validators)
    _put_next_sets(batch, store, d, genesis)
    batch.put(keys.cert_key(d.height), d.cert.encode())
    batch.put(BASE_HEADER, d.header.encoded)
    # the changes' headers and certificates: no block before H is stored to give them
    batch.put(keys.BASE_HISTORY, encode(d.history.to_obj()))
    batch.put(STATE_BASE, d.height.to_bytes(8, "big"))
    batch.delete(STATE_SYNC_PARTIAL)
    genesis_root = StateTree(MemoryStore()).apply(genesis_state(genesis), WriteBatch(), height=0)
    batch.put(keys.GENESIS_STATE_ROOT, genesis_root)
    batch.put(keys.GENESIS_HASH, genesis.hash)
    stamp_format(batch)
    put_head(batch, d.header)
    return batch


def _put_next_sets(batch: WriteBatch, store: KVStore, d: Description, genesis: Genesis) -> None:
    """The sets voting on H+1 and H+2, as the state of H holds them (rows only where the
    set changes, as execution writes them)."""
    overlay = _Overlay(store, batch)
    state = StateTree(overlay, d.header.state_root)
    reader = _AtRoot(state)
    at_h: ValidatorSet = d.history.at(d.height)
    current, upcoming = current_set(reader, genesis), next_set(reader, genesis)
    if current.hash != d.header.next_validators_hash:
        raise SnapshotError("the state's validator set differs from the header's next set")
    if current.hash != at_h.hash:
        put_validator_change(batch, d.height + 1, current)
    if upcoming.hash != current.hash:
        put_validator_change(batch, d.height + 2, upcoming)


class _Overlay:
    """Reads of ``store`` that see ``batch`` first (the skeleton is not written yet)."""

    def __init__(self, store: KVStore, batch: WriteBatch) -> None:
        self.store, self.batch = store, batch

    def get(self, key: bytes) -> bytes | None:
        found, value = self.batch.get(key)
        return value if found else self.store.get(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.store.iterate(prefix, start=start, reverse=reverse)


class _AtRoot:
    """``get`` of the state under one root, by walking (the flat table may be ahead)."""

    def __init__(self, tree: StateTree) -> None:
        self.tree = tree

    def get(self, key: bytes) -> bytes | None:
        return self.tree.get_at(self.tree.root, key)


def base_height(store: KVStore) -> int:
    """The height this store's state starts at: 0 for a node that executed the chain from
    genesis, H for one that joined by state sync at H (it holds no state, blocks or
    receipts before H). State reads check the later of this and the prune window's
    start: :func:`ledger.state_prune.oldest_state_height`."""
    raw = store.get(STATE_BASE)
    return 0 if raw is None else int.from_bytes(raw, "big")


def unfinished(store: KVStore) -> int | None:
    """The height of a state sync that stopped before its end (its rows are partial)."""
    raw = store.get(STATE_SYNC_PARTIAL)
    return None if raw is None else int.from_bytes(raw, "big")


class UnfinishedStateSync(StorageError):
    """A store holding an unfinished state sync, opened without ``--state-sync``."""


def refuse_unfinished(store: KVStore, home: str) -> None:
    """One line, and no start, for a store a state sync stopped in (its state is partial:
    executing blocks on it would diverge)."""
    height = unfinished(store)
    if height is not None:
        raise UnfinishedStateSync(
            f"{home}/data holds an unfinished state sync of height {height}: start the node "
            "with --state-sync to do it again, or empty data/ to catch up by blocks"
        )


def wipe(store: KVStore) -> int:
    """Delete every row (an unfinished state sync's leftovers); the count deleted."""
    count = 0
    while True:
        batch = WriteBatch()
        for key, _ in store.iterate(b""):
            batch.delete(key)
            if len(batch) >= 10_000:
                break
        if not len(batch):
            return count
        count += len(batch)
        store.write(batch, sync=False)
