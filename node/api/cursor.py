"""Opaque paging cursors: where a filtered scan stopped, sealed so only this node can read it.

A search scans an index in id order and keeps only the records its reader may
see. Where it stops can be an id the reader may *not* see; handing that id out
as ``next_after`` would leak it. The cursor is that id sealed with AES-256-GCM
under a key that lives only in this node's memory: the client passes it back
unchanged, learns nothing from it, and cannot forge one.
A node restart (a new key) makes old cursors invalid: the client starts over.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "c1."
_NONCE = 12
MAX_CURSOR_CHARS = 256


class CursorError(ValueError):
    """The cursor was not sealed by this node (or for this search)."""


class CursorSealer:
    def __init__(self, key: bytes | None = None) -> None:
        self._aead = AESGCM(key if key is not None else AESGCM.generate_key(bit_length=256))

    def seal(self, position: str, search: str) -> str:
        """A cursor for ``position`` that opens only for the same ``search`` (its filters)."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, position.encode(), search.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, cursor: str, search: str) -> str:
        if not cursor.startswith(PREFIX) or len(cursor) > MAX_CURSOR_CHARS:
            raise CursorError("not a cursor this node gave out")
        text = cursor[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], search.encode())
            return plain.decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            raise CursorError(
                "the cursor was not given out by this node for this search (or the node "
                "restarted since): start the search again without it"
            ) from None


def is_cursor(text: str) -> bool:
    return text.startswith(PREFIX)
