"""Distinct types for the numbers and byte strings that must never be mixed up."""

from __future__ import annotations

from typing import NewType

Height = NewType("Height", int)
Round = NewType("Round", int)
# A validator or member is identified by its 32-byte Ed25519 public key.
PublicKey = NewType("PublicKey", bytes)
Hash = NewType("Hash", bytes)

HASH_SIZE = 32
NIL_ROUND = -1  # "no round", e.g. a proposal with no valid round (paper: -1)
