"""Signatures already found good, so that execution does not check them again.

A contract checks signatures inside payloads (a meter's over its reading) every time a
block runs: the proposer building it, every validator re-executing it, a node catching
up. The node can check those signatures beforehand in its signature worker, on another
core, and record each good one here; :func:`ledger.crypto.is_valid_signature` then finds
the verdict instead of paying for Ed25519 on the thread that executes blocks.

A verdict is a pure function of (public key, signature, signed bytes), and the key of
this table is the SHA-256 of exactly those, length-prefixed: a recorded verdict can only
ever answer for the same inputs, so the table cannot make execution differ between
nodes — only faster. Only good verdicts are kept (a bad one is checked again: rare, and
refused anyway). Bounded (LRU), one table per process (every node in it may use it).
"""

from __future__ import annotations

from collections import OrderedDict

from ledger.digest import sha256_digest

# ~11 MB at most (a 32-byte key and an OrderedDict entry, ~170 bytes): more than the
# readings of a full mempool (50,000 transactions, a fifth of them readings) and of a
# catch-up batch
DEFAULT_CAPACITY = 65_536


def verdict_key(public_key: bytes, signature: bytes, signed: bytes) -> bytes:
    """The table key of a signature over ``signed`` (the domain-separated bytes)."""
    return sha256_digest(
        len(public_key).to_bytes(1, "big")
        + public_key
        + len(signature).to_bytes(1, "big")
        + signature
        + signed
    )


class GoodSignatures:
    """A bounded LRU set of verdict keys whose signatures verified."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[bytes, None] = OrderedDict()
        self.hits = 0

    def add(self, key: bytes) -> None:
        """Record that the signature behind ``key`` verified (the caller checked it)."""
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def known(self, key: bytes) -> bool:
        if key in self._keys:
            self.hits += 1
            return True
        return False

    def __contains__(self, key: object) -> bool:
        return key in self._keys  # not counted as a hit: nothing was saved by asking

    def __len__(self) -> int:
        return len(self._keys)


GOOD = GoodSignatures()  # the process's table: ledger.crypto.is_valid_signature reads it
