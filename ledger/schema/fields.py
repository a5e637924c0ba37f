"""The specs every wire type shares: hashes, keys, signatures, heights, counts."""

from __future__ import annotations

from ledger.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE
from ledger.ids import HASH_SIZE
from ledger.schema.specs import Bytes, Int

MAX_I63 = 2**63 - 1
"""The largest signed 64-bit integer: heights, times, nonces."""

HASH = Bytes(size=HASH_SIZE)
"""A SHA-256 hash."""
PUBLIC_KEY = Bytes(size=PUBLIC_KEY_SIZE)
"""An Ed25519 public key (a validator's, a member's)."""
SIGNATURE = Bytes(size=SIGNATURE_SIZE)
"""An Ed25519 signature."""
HEIGHT = Int(lo=1, hi=MAX_I63)
"""A block height."""
COUNT = Int(hi=MAX_I63)
"""A non-negative 64-bit signed count, time or nonce."""
