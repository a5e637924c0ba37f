"""Block pruning: keep the bodies and receipts of the last N blocks only, headers for ever.

An archive node keeps every block; an agency short of disk may say otherwise
(``[storage] block_keep_heights``, node/config.py). What a pruned height keeps is what
a light client needs and nothing more: the block's **header** (``PRUNED_HEADER`` ‖
height) and its **commit certificate** (the ``CERT`` row, untouched). So the hash chain
from genesis, the certified validator-set history and a header-with-certificate answer
for every height stay whole — the same idea as a state-synced store's ``BASE_HEADER``,
one row per pruned height instead of one for the base. What goes: the block row
(transactions, evidence pieces, the parent's certificate it carries — the ``CERT`` row
of the parent holds the same certificate) and its receipts.

Kept on purpose: the tx index (``TX_INDEX``), so that a pruned transaction is known to
be committed at height H, index i — "its block has been pruned from this node, ask an
archive node", not "unknown transaction" (and the index still refuses a replay of it);
the block-hash index; the Merkle log of every transaction hash (an inclusion proof of a
pruned transaction's hash still works); committed evidence and the offence index (few,
and the offence index must keep refusing an offence committed twice).

Crash safety: a step is one atomic write batch (the headers written, the block and
receipt rows deleted, the new oldest height ``OLDEST_BLOCK``), so a store stopped at any
instant is before or after a whole step, and every height from the oldest it records on
holds its block and receipts. Incremental: one step handles at most ``limit`` rows (a
block row and its receipts; at least one block), so switching pruning on with a long
history behind it is worked off over many blocks, never in one long pause of consensus.

Determinism: nothing here changes a block's or the state's bytes; a pruning node computes
the very headers an archive node does (the rows pruned are never read by execution).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import BlockHeader, decode_header
from ledger.encoding import decode
from ledger.errors import CorruptionError, DecodeError, LedgerError
from ledger.state_prune import height_record
from ledger.storage import KVStore, WriteBatch, keys
from ledger.storage.protocol import KVReader

BLOCK_STEP_ROWS = 20_000
"""Rows (a block and its receipts) one step deletes at most: about as many as a full
block writes, so a step costs at most about what committing one block does."""


class BlockPruned(LedgerError):
    """A read of a block body or receipt at a height this node has pruned."""

    code = "block_pruned"
    http_status = 410  # gone from this node: not malformed, not unknown

    def __init__(self, height: int, oldest: int, what: str | None = None) -> None:
        super().__init__(
            f"{what or f'block {height}'}: this node keeps block bodies and receipts from "
            f"height {oldest} on ([storage] block_keep_heights); the header and certificate "
            f"of height {height} are kept; ask an archive node for its transactions and receipts"
        )
        self.height = height
        self.oldest = oldest


def pruned_to(store: KVReader) -> int:
    """The oldest height whose block body and receipts pruning has kept (0: never pruned)."""
    return height_record(store, keys.OLDEST_BLOCK, "oldest-block")


def oldest_block_height(store: KVReader) -> int:
    """The oldest height whose block body this store holds: 1 for an archive node, the
    pruning window's start, or the height after a state sync's base (its own block is not
    stored: node/statesync_check.py) — the latest of these."""
    base = store.get(keys.STATE_BASE)
    after_base = 1 if base is None else int.from_bytes(base, "big") + 1
    return max(1, pruned_to(store), after_base)


def require_block(store: KVReader, height: int, what: str | None = None) -> None:
    """Raise :class:`BlockPruned` if the body of block ``height`` has been pruned."""
    oldest = pruned_to(store)
    if 0 < height < oldest:
        raise BlockPruned(height, oldest, what)


def pruned_header(store: KVReader, height: int) -> BlockHeader | None:
    """The kept header of a pruned height (None if it has none)."""
    raw = store.get(keys.pruned_header_key(height))
    if raw is None:
        return None
    try:
        header = decode_header_row(raw)
    except (DecodeError, LedgerError) as exc:
        raise CorruptionError(
            f"the kept header of pruned block {height} is corrupt: {exc}"
        ) from None
    if header.height != height:
        raise CorruptionError(f"the kept header of pruned block {height} is of {header.height}")
    return header


def decode_header_row(raw: bytes) -> BlockHeader:
    """A header stored on its own (a pruned block's, or a state sync's base)."""
    return BlockHeader.from_obj(decode(raw))


@dataclass(frozen=True, slots=True)
class BlockPruneStep:
    """What one step did."""

    oldest: int  # the oldest height whose block body the store now holds
    blocks: int  # block bodies deleted (their headers kept)
    rows: int  # rows deleted: blocks and receipts
    done: bool  # nothing the window allows is left to prune


def prune_blocks_step(
    store: KVStore, head_height: int, keep_heights: int, *, limit: int = BLOCK_STEP_ROWS
) -> BlockPruneStep:
    """Delete, in one atomic batch, the bodies and receipts of the oldest blocks below
    the last ``keep_heights`` heights up to ``head_height``, at most ``limit`` rows (but
    always one whole block), keeping each one's header."""
    start = oldest_block_height(store)
    target = head_height - keep_heights + 1
    batch = WriteBatch()
    height, rows = start, 0
    while height < target and (rows == 0 or rows < limit):
        raw = store.get(keys.block_key(height))
        if raw is None:
            raise CorruptionError(f"block {height} is missing from the blocks this node keeps")
        try:
            header = decode_header(raw)
        except DecodeError as exc:
            raise CorruptionError(f"stored block {height} is corrupt: {exc}") from None
        batch.put(keys.pruned_header_key(height), header.encoded)
        batch.delete(keys.block_key(height))
        rows += 1
        for key, _ in store.iterate(keys.RECEIPT + keys.height_bytes(height)):
            batch.delete(key)
            rows += 1
        height += 1
    if height == start:
        return BlockPruneStep(start, 0, 0, True)
    batch.put(keys.OLDEST_BLOCK, keys.height_bytes(height))
    store.write(batch, sync=False)
    return BlockPruneStep(height, height - start, rows, height >= target)
