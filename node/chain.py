"""The chain as stored: blocks, certificates, receipts, the tx index, committed
evidence and its offence index, and the head.

Reads go straight to the KV store; the only write is :meth:`ChainStore.commit`,
which puts one executed block (block, its certificate, receipts, tx index, committed
evidence, state and log nodes, contract indexes, head pointer) in one atomic batch, synced
unless catch-up asks otherwise (node/sync.py; :meth:`ChainStore.flush` then ends the
run of unsynced commits).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from contracts.validator_state import decode_set
from ledger.block import Block, BlockHeader, Receipt, decode_header
from ledger.block_prune import decode_header_row, pruned_header
from ledger.encoding import Value, decode, encode
from ledger.errors import CorruptionError, DecodeError, LedgerError, StorageError
from ledger.evidence import Evidence, decode_evidence
from ledger.genesis import Genesis
from ledger.merkle import EMPTY_ROOT as EMPTY_LOG_ROOT
from ledger.state import EMPTY_ROOT, StateTree
from ledger.storage import KVStore, WriteBatch, keys
from ledger.storage.format import check_format, stamp_format
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from node.write_behind import WriteBehind

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Head:
    """The latest committed block's facts the next block builds on."""

    height: int
    block_hash: bytes  # genesis hash at height 0
    time_ms: int
    state_root: bytes
    log_size: int
    log_root: bytes


def _home_of(store: KVStore) -> str:
    """The node home a LevelDB store is the ``data`` directory of, for messages."""
    path = getattr(store, "path", None)
    return os.path.dirname(os.path.abspath(path)) if isinstance(path, str) else "DIR"


class ChainStore:
    """Typed reads and the one atomic commit over a :class:`KVStore`."""

    def __init__(self, store: KVStore, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis
        stored = store.get(keys.GENESIS_HASH)
        if stored is not None and stored != genesis.hash:
            raise StorageError(
                "this data directory belongs to another chain: its genesis hash is "
                f"{stored.hex()[:16]}…, the genesis file's is {genesis.hash.hex()[:16]}…"
            )
        self.initialised = stored is not None
        check_format(store, _home_of(store))

    # --- head ---------------------------------------------------------------------------

    def head(self) -> Head:
        raw = self.store.get(keys.HEAD)
        if raw is None:
            return Head(
                0,
                self.genesis.hash,
                self.genesis.genesis_time_ms,
                self.genesis_state_root(),
                0,
                EMPTY_LOG_ROOT,
            )
        try:
            m = decode(raw)
            return Head(
                m["height"],
                m["block_hash"],
                m["time_ms"],
                m["state_root"],
                m["log_size"],
                m["log_root"],
            )
        except (DecodeError, KeyError, TypeError) as exc:
            raise CorruptionError(f"the head record is corrupt: {exc}") from None

    def genesis_state_root(self) -> bytes:
        raw = self.store.get(keys.META + b"genesis_state_root")
        return raw if raw is not None else EMPTY_ROOT

    def put_head(self, batch: WriteBatch, header: BlockHeader) -> None:
        put_head(batch, header)

    def initialise(self, genesis_state: dict[bytes, bytes]) -> None:
        """Write the genesis state once (idempotent: a second call changes nothing)."""
        if self.initialised:
            return
        batch = WriteBatch()
        root = StateTree(self.store).apply(dict(genesis_state), batch, height=0)
        batch.put(keys.META + b"genesis_state_root", root)
        batch.put(keys.GENESIS_HASH, self.genesis.hash)
        stamp_format(batch)
        self.store.write(batch, sync=True)
        self.initialised = True

    # --- blocks -------------------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        return self._record(keys.block_key(height), Block.decode, f"stored block {height}")

    def block_bytes(self, height: int) -> bytes | None:
        return self.store.get(keys.block_key(height))

    def header(self, height: int) -> BlockHeader | None:
        """A stored block's header, its transactions left undecoded (for the height a
        state sync started at, whose block is not stored: the header it wrote; for a
        height whose block was pruned: the header kept for it, ledger/block_prune.py)."""
        found = self._record(keys.block_key(height), decode_header, f"stored block {height}")
        if found is not None or not height:
            return found
        if height == self.base_height():
            return self._record(keys.BASE_HEADER, decode_header_row, "the state sync's header")
        return pruned_header(self.store, height)

    def base_history(self) -> dict[int, Value]:
        """A state-synced store's certified validator-set changes up to its base height,
        by change height, as ``GET /v1/validators`` lists them (empty for other stores)."""
        raw = self.store.get(keys.BASE_HISTORY)
        if raw is None:
            return {}
        try:
            items = decode(raw)
        except DecodeError as exc:
            raise CorruptionError(f"the state sync's validator history is corrupt: {exc}") from None
        if not isinstance(items, list):
            raise CorruptionError("the state sync's validator history is not a list")
        return {
            i["height"]: i
            for i in items
            if isinstance(i, dict) and isinstance(i.get("height"), int)
        }

    def base_height(self) -> int:
        """The height this store starts at: 0 for a node that executed the chain from
        genesis, H for one that joined by state sync at H (no state, blocks or receipts
        before H; the header and certificate of H). Pruning leaves it: the state it
        keeps starts at :func:`ledger.state_prune.oldest_state_height`, never before this."""
        raw = self.store.get(keys.STATE_BASE)
        return 0 if raw is None else int.from_bytes(raw, "big")

    # --- validator sets -----------------------------------------------------------------

    def validators_at(self, height: int) -> ValidatorSet:
        """The set that votes on block ``height`` (known up to head + 2): the latest
        change in force by then, else the genesis set."""
        start = keys.valset_key(height)
        for _, raw in self.store.iterate(keys.VALSET, start=start, reverse=True):
            return self._set(raw, height)
        return self.genesis.validators

    def validator_changes(self, after: int = 0, limit: int = 100) -> list[tuple[int, ValidatorSet]]:
        """(effective height, set) of the first ``limit`` changes in force after ``after``."""
        out: list[tuple[int, ValidatorSet]] = []
        start = keys.valset_key(after + 1)
        for key, raw in self.store.iterate(keys.VALSET, start=start):
            if len(out) == limit:
                break
            height = int.from_bytes(key[len(keys.VALSET) :], "big")
            out.append((height, self._set(raw, height)))
        return out

    @staticmethod
    def _set(raw: bytes, height: int) -> ValidatorSet:
        try:
            return decode_set(raw)
        except LedgerError as exc:
            raise CorruptionError(
                f"the validator set of height {height} is corrupt: {exc}"
            ) from None

    # --- committed evidence -------------------------------------------------------------

    def offence_location(self, evidence: Evidence) -> tuple[int, int] | None:
        """(block height, index in its evidence) where this offence was committed."""
        raw = self.store.get(offence_key_of(evidence))
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:10], "big")

    def evidence_committed(self, evidence: Evidence) -> bool:
        return self.store.get(offence_key_of(evidence)) is not None

    def committed_evidence(
        self, from_height: int = 1, max_blocks: int = 100
    ) -> list[tuple[int, list[Evidence]]]:
        """(height, its evidence in block order) for the first ``max_blocks`` blocks at
        or above ``from_height`` that commit evidence, from the evidence index."""
        out: list[tuple[int, list[Evidence]]] = []
        start = keys.COMMITTED_EVIDENCE + keys.height_bytes(from_height)
        for key, raw in self.store.iterate(keys.COMMITTED_EVIDENCE, start=start):
            height = int.from_bytes(key[2:10], "big")
            if not out or out[-1][0] != height:
                if len(out) == max_blocks:
                    break
                out.append((height, []))
            try:
                out[-1][1].append(decode_evidence(raw))
            except LedgerError as exc:
                raise CorruptionError(f"committed evidence at {height} is corrupt: {exc}") from None
        return out

    def certificate(self, height: int) -> CommitCertificate | None:
        what = f"stored certificate {height}"
        return self._record(keys.cert_key(height), CommitCertificate.decode, what)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a committed transaction."""
        raw = self.store.get(keys.tx_index_key(tx_hash))
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:12], "big")

    def tx_log_index(self, tx_hash: bytes) -> int | None:
        """A committed transaction's leaf index in the Merkle log of every transaction.

        Read from the tx index row, so a proof for it needs no block to be decoded.
        """
        raw = self.store.get(keys.tx_index_key(tx_hash))
        if raw is None:
            return None
        if len(raw) == TX_INDEX_VALUE_SIZE:
            return int.from_bytes(raw[12:], "big")
        # A row written before the field: the header (kept for a pruned block too) says.
        header = self.header(int.from_bytes(raw[:8], "big"))
        if len(raw) != 12 or header is None:
            raise CorruptionError(f"tx index entry of {tx_hash.hex()} is corrupt")
        return header.log_size - header.tx_count + int.from_bytes(raw[8:], "big")

    def receipts(self, height: int) -> list[Receipt]:
        prefix = keys.RECEIPT + keys.height_bytes(height)
        out = []
        for _, raw in self.store.iterate(prefix):
            try:
                out.append(Receipt.decode(raw))
            except DecodeError as exc:
                raise CorruptionError(f"stored receipt at {height} is corrupt: {exc}") from None
        return out

    def _record(self, key: bytes, decode: Callable[[bytes], R], what: str) -> R | None:
        """The record at ``key`` decoded (None if absent); one that does not decode is
        corruption, reported as ``what``."""
        raw = self.store.get(key)
        if raw is None:
            return None
        try:
            return decode(raw)
        except DecodeError as exc:
            raise CorruptionError(f"{what} is corrupt: {exc}") from None

    # --- the one write ------------------------------------------------------------------

    def commit(
        self,
        batch: WriteBatch,
        block: Block,
        cert: CommitCertificate,
        *,
        sync: bool = True,
        behind: bool = False,
    ) -> None:
        """Add the certificate and head to ``batch`` and write it atomically.

        ``sync=False`` only for catch-up's blocks before the last of a batch: the write
        is atomic and ordered but may be lost to a power cut until the next synced one.
        ``behind``: where the store writes behind (node.write_behind), the write is made
        on its thread, in order, while the caller goes on; reads see it at once."""
        if self.head().height + 1 != block.height:
            raise StorageError(
                f"cannot commit block {block.height} on top of height {self.head().height}"
            )
        batch.put(keys.cert_key(block.height), cert.encode())
        if block.last_cert is not None:
            # The previous height's certificate becomes the one the chain carries.
            batch.put(keys.cert_key(block.height - 1), block.last_cert.encode())
        self.put_head(batch, block.header)
        if behind and isinstance(self.store, WriteBehind):
            self.store.queue(batch, sync=sync)
        else:
            self.store.write(batch, sync=sync)

    def flush(self) -> None:
        """Make every write so far durable: one synced, empty batch (a synced write
        makes every earlier one durable: ``LevelDBStore.write``)."""
        self.store.write(WriteBatch(), sync=True)


def put_block_records(batch: WriteBatch, block: Block, receipts: list[Receipt]) -> None:
    """The per-block rows: the block, its hash index, receipts, the tx index, and the
    evidence it commits with the offence index."""
    height = block.height
    batch.put(keys.block_key(height), block.encode())
    batch.put(keys.block_hash_key(block.hash), height.to_bytes(8, "big"))
    for index, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
        batch.put(keys.receipt_key(height, index), receipt.encode())
        batch.put(keys.tx_index_key(tx.hash), tx_index_value(block.header, index))
    for index, evidence in enumerate(block.evidence):
        batch.put(keys.committed_evidence_key(height, index), encode(evidence.to_obj()))
        batch.put(offence_key_of(evidence), height.to_bytes(8, "big") + index.to_bytes(2, "big"))


def put_head(batch: WriteBatch, header: BlockHeader) -> None:
    """The head row: ``header``'s block is the latest committed."""
    batch.put(
        keys.HEAD,
        encode(
            {
                "height": header.height,
                "block_hash": header.hash,
                "time_ms": header.time_ms,
                "state_root": header.state_root,
                "log_size": header.log_size,
                "log_root": header.log_root,
            }
        ),
    )


def put_validator_change(
    batch: WriteBatch, effective_height: int, validators: ValidatorSet
) -> None:
    """The chain row of a set change made by the block ``effective_height - 2``."""
    batch.put(keys.valset_key(effective_height), encode(validators.to_obj()))


def offence_key_of(evidence: Evidence) -> bytes:
    _, offender, height, round_, message_type = evidence.offence
    return keys.offence_key(offender, height, round_, message_type)


TX_INDEX_VALUE_SIZE = 20


def tx_index_value(header: BlockHeader, index: int) -> bytes:
    """Height (8 bytes), index in the block (4) and leaf index in the Merkle log (8)."""
    log_index = header.log_size - header.tx_count + index
    return (
        header.height.to_bytes(8, "big") + index.to_bytes(4, "big") + log_index.to_bytes(8, "big")
    )
