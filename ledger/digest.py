"""SHA-256 of a byte string, the one hash of the ledger's formats.

``sha256_digest(data)`` is ``hashlib.sha256(data).digest()``. This file is the pure
form; ``make compile`` also builds its C twin, ``ledger/digest.c`` (a hand-written
extension module, not mypyc), which the import system then prefers, under the same
rules as the compiled modules (``ledger.compiled``: not when stale, not with
``CITYLEDGER_PURE=1``).

Why a C twin: the state tree, the Merkle log and every transaction hash one short
string at a time (about 50 hashes a transaction of the mix, most of them 65 bytes),
and on Python 3.11 with OpenSSL 3 each ``hashlib.sha256(...)`` looks the algorithm up
by name (``EVP_MD_fetch``, a lock and a property query) before hashing: ~400 ns a call,
of which the hash itself is under a third. The C twin calls OpenSSL's SHA-256 directly
(~120 ns). docs/performance.md, "SHA-256 without the look-up by name".
"""

from __future__ import annotations

from hashlib import sha256


def sha256_digest(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of ``data``."""
    return sha256(data).digest()
