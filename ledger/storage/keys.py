"""Every storage key CityLedger writes, in one place.

Keys are ``<version byte><table byte>`` followed by the table's own key; the
version byte lets a later schema live beside this one. Heights are 8-byte
big-endian so that byte order is numeric order. Nothing else in the code
builds a storage key by hand.
"""

from __future__ import annotations

SCHEMA_VERSION = b"\x01"


def _table(tag: bytes) -> bytes:
    return SCHEMA_VERSION + tag


# Chain
META = _table(b"m")  # META + name -> value (head height, genesis hash, schema)
BLOCK = _table(b"b")  # BLOCK + height -> encoded Block
BLOCK_HASH = _table(b"h")  # BLOCK_HASH + block hash -> height
CERT = _table(b"c")  # CERT + height -> encoded CommitCertificate
TX_INDEX = _table(b"t")  # TX_INDEX + tx hash -> (height, index, log leaf index)
RECEIPT = _table(b"r")  # RECEIPT + height + index -> encoded Receipt

# Merkle log over every transaction hash since genesis
LOG = _table(b"l")  # LOG + last_leaf(8) + level(1) -> node hash; LOG + b"size" (ledger.log)

# Authenticated state (sparse Merkle tree pages and leaves; docs/formats-state.md §4).
# Store format 3 files each row under the height of the block that wrote it.
STATE_NODE = _table(b"n")  # + u64be(height) + hash -> a page of 4 binary levels, or a leaf
STATE_ROOT = _table(b"u")  # + root hash -> u64be(height): where that root's row is filed
STATE_LEAF = _table(b"v")  # STATE_LEAF + sha256(state key) -> (state key, value)
# Older store formats; only `node migrate-store` reads them. Format 1 kept one binary node
# per row, format 2 the pages by hash alone.
LEGACY_STATE_NODE = _table(b"s")  # + node hash -> 0x01 || left || right, or a leaf
LEGACY_PAGE_NODE = _table(b"p")  # + hash -> a page (wire form) or a leaf

# Committed equivocation evidence (chain rows, written in the batch of the block that
# commits it): every piece by (block height, index in the block), and the offence index
# that keeps an offence from being committed twice.
COMMITTED_EVIDENCE = _table(b"x")  # + height + index(2) -> canonical evidence
OFFENCE = _table(b"o")  # + offender(32) + height + round(4) + type(1) -> height + index(2)

# Validator-set changes (chain rows, written in the batch of the block whose execution
# made the change): the new set by the height it is in force from (node/chain.py).
VALSET = _table(b"w")  # + effective height -> the set (canonical list of validators)

# Block pruning (ledger/block_prune.py): the header of a height whose block body and
# receipts a node with [storage] block_keep_heights has deleted. Its certificate stays in
# CERT, so the hash chain and the certified validator-set history stay whole.
PRUNED_HEADER = _table(b"k")  # + height -> the header's canonical bytes

# Pruning, node-local (ledger/state_prune.py): which state rows left the tree at which
# height, and the oldest height whose state is still whole.
PRUNE = _table(b"q")
RETIRED = PRUNE + b"d"  # + height + filed height + node hash -> 0x01 if it was a root, or b""
OLDEST_STATE = PRUNE + b"o"  # -> the oldest height whose state the store holds (8)
# The offline audit's replay only (node/audit_pruned.py): the same records by row.
RETIRED_BY_ROW = PRUNE + b"a"  # + filed height + node hash -> the height it left (8)
# Store format 2's records (+ height + hash, + hash): removed by `node migrate-store`.
LEGACY_RETIRED = PRUNE + b"r"
LEGACY_RETIRED_LAST = PRUNE + b"l"

# Consensus, node-local: the signer's last signed (height, round, step), the evidence
# pool (found or gossiped, not committed yet)
SIGNER = _table(b"g")
EVIDENCE = _table(b"e")

# Contracts' secondary indexes live under INDEX + index name + ...
INDEX = _table(b"i")

HEAD = META + b"head"
GENESIS_HASH = META + b"genesis"
GENESIS_STATE_ROOT = META + b"genesis_state_root"  # written with the genesis state
STORE_FORMAT = META + b"store_format"  # ASCII decimal (ledger/storage/format.py)
# State sync (node/statesync.py): a store that joined from a snapshot of height H
STATE_BASE = META + b"state_base"  # u64be H: state, blocks and receipts start at H
BASE_HEADER = META + b"state_base_header"  # the header of H (its block is not stored)
BASE_HISTORY = META + b"state_base_history"  # the certified set changes up to H, as checked
STATE_SYNC_PARTIAL = META + b"state_sync_partial"  # u64be H: chunks being written
# Block pruning (ledger/block_prune.py): u64be O, the oldest height whose block body and
# receipts are kept (absent: none pruned); below it only headers and certificates.
OLDEST_BLOCK = META + b"oldest_block"


def height_bytes(height: int) -> bytes:
    """8-byte big-endian height, so byte order is numeric order."""
    return height.to_bytes(8, "big")


def block_key(height: int) -> bytes:
    return BLOCK + height_bytes(height)


def pruned_header_key(height: int) -> bytes:
    return PRUNED_HEADER + height_bytes(height)


def cert_key(height: int) -> bytes:
    return CERT + height_bytes(height)


def valset_key(effective_height: int) -> bytes:
    return VALSET + height_bytes(effective_height)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH + block_hash


def tx_index_key(tx_hash: bytes) -> bytes:
    return TX_INDEX + tx_hash


def receipt_key(height: int, index: int) -> bytes:
    return RECEIPT + height_bytes(height) + index.to_bytes(4, "big")


def retired_key(height: int, filed_at: bytes, node_hash: bytes) -> bytes:
    """The record of a state row (filed at ``filed_at``) that left the tree at ``height``."""
    return RETIRED + height_bytes(height) + filed_at + node_hash


def committed_evidence_key(height: int, index: int) -> bytes:
    return COMMITTED_EVIDENCE + height_bytes(height) + index.to_bytes(2, "big")


def offence_key(offender: bytes, height: int, round_: int, message_type: int) -> bytes:
    """One offence: the validator, the height and round, and what it signed twice
    (0 a proposal, 1 a prevote, 2 a precommit)."""
    return (
        OFFENCE
        + offender
        + height_bytes(height)
        + round_.to_bytes(4, "big")
        + message_type.to_bytes(1, "big")
    )
