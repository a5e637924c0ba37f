"""State proofs: the hashing of the state tree and the root-only verifier.

This module is all a light client needs to check a state answer: it imports no
storage. The tree itself (:mod:`ledger.state`) builds on the same constants.
``docs/formats-state.md`` is the normative description; in short:

* ``key_hash = SHA-256(key)``, read as a 256-bit path, most significant bit first
  (bit 0 of the path is the top bit of byte 0; 0 = left, 1 = right);
* ``leaf = SHA-256(0x00 || key_hash || SHA-256(value))``;
* ``internal = SHA-256(0x01 || left || right)``;
* the empty subtree is :data:`EMPTY_ROOT`, 32 zero bytes (no preimage is known,
  so it can never be mistaken for a leaf or an internal node);
* compaction: a subtree holding exactly one leaf *is* that leaf (its hash does not
  depend on its depth), a subtree holding none is empty, and only a subtree with two or
  more leaves is an internal node, even when one of its children is empty. The tree
  of a given key->value map therefore has exactly one shape and one root.

A proof walks from the root down the key's path to where it ends: at the key's own
leaf (membership), at an empty subtree, or at another key's leaf whose hash shares
the first ``depth`` bits of the path (both are absence). It carries the ``depth``
siblings from the top down, with the empty ones left out and marked by a cleared
bit in ``bitmap``. Verifying hashes that end upwards and compares with the root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ledger.digest import sha256_digest
from ledger.errors import ProofError, ValidationError
from ledger.schema import Bytes, Described, Int, List, Optional, described, wire

HASH_SIZE: Final = 32
KEY_BITS: Final = 256
EMPTY_ROOT: Final = bytes(HASH_SIZE)
"""Root of the empty state, and the hash of every empty subtree."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_HASH = Bytes(size=HASH_SIZE)


# --- hashing ----------------------------------------------------------------------------------


def key_hash(key: bytes) -> bytes:
    """``SHA-256(key)``: where ``key`` lives in the tree (its 256-bit path)."""
    return sha256_digest(key)


def leaf_hash(key_hash: bytes, value: bytes) -> bytes:
    """``SHA-256(0x00 || key_hash || SHA-256(value))``: the hash of one entry."""
    return sha256_digest(LEAF_PREFIX + key_hash + sha256_digest(value))


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an internal node."""
    return sha256_digest(NODE_PREFIX + left + right)


# --- the proof --------------------------------------------------------------------------------


@described("state proof", sort_keys=True)
@dataclass(frozen=True, slots=True)
class StateProof(Described):
    """Where ``key``'s path ends under one root, and the siblings on the way down.

    ``value`` is the key's value (membership) or ``None`` (absence). For absence the
    path ends either at an empty subtree (``other_*`` are ``None``) or at another
    entry's leaf, given by its key hash and value hash. ``depth`` is how many levels
    the path descends; ``bitmap`` has ``ceil(depth / 8)`` bytes whose bit ``i`` (most
    significant first) says whether the sibling at level ``i`` is non-empty; those
    siblings are in ``siblings``, top first.
    """

    key: bytes = field(metadata=wire(Bytes()))
    value: bytes | None = field(metadata=wire(Optional(Bytes())))
    depth: int = field(metadata=wire(Int(hi=KEY_BITS)))
    bitmap: bytes = field(metadata=wire(Bytes(max_size=KEY_BITS // 8)))
    siblings: tuple[bytes, ...] = field(metadata=wire(List(_HASH, max_len=KEY_BITS, of="hashes")))
    other_key_hash: bytes | None = field(default=None, metadata=wire(Optional(_HASH)))
    other_value_hash: bytes | None = field(default=None, metadata=wire(Optional(_HASH)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "siblings", _check_shape(self, ValidationError))

    @property
    def is_member(self) -> bool:
        """True when this proves the key is present (with :attr:`value`)."""
        return self.value is not None


def _check_shape(proof: StateProof, error: type[Exception]) -> tuple[bytes, ...]:
    """Check every field's type and size and that bitmap and siblings agree."""
    if type(proof.key) is not bytes:
        raise error(f"key must be bytes, got {type(proof.key).__name__}")
    if proof.value is not None and type(proof.value) is not bytes:
        raise error(f"value must be bytes or None, got {type(proof.value).__name__}")
    depth = proof.depth
    if type(depth) is not int:
        raise error(f"depth must be an integer, got {type(depth).__name__}")
    if not 0 <= depth <= KEY_BITS:
        raise error(f"depth {depth} is not between 0 and {KEY_BITS}")
    _check_other_leaf(proof, error)
    bitmap = proof.bitmap
    if type(bitmap) is not bytes:
        raise error(f"bitmap must be bytes, got {type(bitmap).__name__}")
    if len(bitmap) != (depth + 7) // 8:
        raise error(f"bitmap must be {(depth + 7) // 8} bytes for depth {depth}, got {len(bitmap)}")
    bits = int.from_bytes(bitmap, "big")
    if bits & ((1 << (8 * len(bitmap) - depth)) - 1):
        raise error("bitmap has bits set below the proof's depth")
    siblings = proof.siblings
    if not isinstance(siblings, tuple):
        raise error(f"siblings must be a sequence of hashes, got {type(siblings).__name__}")
    if len(siblings) != bits.bit_count():
        raise error(
            f"bitmap marks {bits.bit_count()} non-empty siblings but the proof has {len(siblings)}"
        )
    for i, sibling in enumerate(siblings):
        if type(sibling) is not bytes or len(sibling) != HASH_SIZE:
            raise error(f"sibling {i} must be {HASH_SIZE} bytes")
        if sibling == EMPTY_ROOT:
            raise error(f"sibling {i} is the empty hash, which the bitmap must mark instead")
    return siblings


def _check_other_leaf(proof: StateProof, error: type[Exception]) -> None:
    okh, ovh = proof.other_key_hash, proof.other_value_hash
    if okh is None and ovh is None:
        return
    if okh is None or ovh is None:
        raise error("other_key_hash and other_value_hash come together or not at all")
    if proof.value is not None:
        raise error("a membership proof carries no other leaf")
    for name, h in (("other_key_hash", okh), ("other_value_hash", ovh)):
        if type(h) is not bytes or len(h) != HASH_SIZE:
            raise error(f"{name} must be {HASH_SIZE} bytes")


# --- verification -----------------------------------------------------------------------------


def verify_state_proof(root: bytes, proof: StateProof) -> None:
    """Raise :class:`ProofError` unless ``proof`` holds under ``root``.

    Needs nothing but the root (from a certified block header): on return,
    ``proof.key`` maps to ``proof.value`` in that state, or is absent when it is None.
    """
    if type(root) is not bytes or len(root) != HASH_SIZE:
        raise ProofError(f"state root must be {HASH_SIZE} bytes")
    kh = sha256_digest(proof.key)
    path = int.from_bytes(kh, "big")
    depth = proof.depth
    if proof.value is not None:
        cur = sha256_digest(LEAF_PREFIX + kh + sha256_digest(proof.value))
    elif proof.other_key_hash is not None and proof.other_value_hash is not None:
        okh = proof.other_key_hash
        if okh == kh:
            raise ProofError("the leaf offered as proof of absence is the key's own leaf")
        if (int.from_bytes(okh, "big") ^ path) >> (KEY_BITS - depth):
            raise ProofError(
                f"the leaf offered as proof of absence is not on the key's path "
                f"(it must share the first {depth} bits of the key hash)"
            )
        cur = sha256_digest(LEAF_PREFIX + okh + proof.other_value_hash)
    else:
        cur = EMPTY_ROOT
    root_hash = _fold(cur, path, depth, proof.bitmap, proof.siblings)
    if root_hash != root:
        kind = "presence" if proof.value is not None else "absence"
        raise ProofError(
            f"state proof of {kind} for key {proof.key.hex()} does not lead to root "
            f"{root.hex()} (it leads to {root_hash.hex()})"
        )


def _fold(cur: bytes, path: int, depth: int, bitmap: bytes, siblings: tuple[bytes, ...]) -> bytes:
    """Hash ``cur`` from level ``depth`` up to the root along ``path``."""
    bits = int.from_bytes(bitmap, "big")
    top = 8 * len(bitmap) - 1
    j = len(siblings)
    for level in range(depth - 1, -1, -1):
        if (bits >> (top - level)) & 1:
            j -= 1
            if j < 0:
                raise ProofError("state proof has fewer siblings than its bitmap marks")
            sibling = siblings[j]
        else:
            sibling = EMPTY_ROOT
        if (path >> (255 - level)) & 1:
            cur = sha256_digest(NODE_PREFIX + sibling + cur)
        else:
            cur = sha256_digest(NODE_PREFIX + cur + sibling)
    if j != 0:
        raise ProofError("state proof has more siblings than its bitmap marks")
    return cur


def bitmap_bytes(bits: int, depth: int) -> bytes:
    """Pack the sibling bits (bit ``255 - level`` of ``bits`` for each level) to bytes."""
    size = (depth + 7) // 8
    return (bits >> (KEY_BITS - 8 * size)).to_bytes(size, "big")


def verify_withheld_value(root: bytes, proof: StateProof, value_hash: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof.key`` is present under ``root`` with a value
    whose SHA-256 is ``value_hash``: the value withheld (a redacted answer), the path
    proven. ``proof.value`` must be None and the proof must carry no other leaf."""
    if type(root) is not bytes or len(root) != HASH_SIZE:
        raise ProofError(f"state root must be {HASH_SIZE} bytes")
    if type(value_hash) is not bytes or len(value_hash) != HASH_SIZE:
        raise ProofError(f"a withheld value's hash must be {HASH_SIZE} bytes")
    if proof.value is not None or proof.other_key_hash is not None:
        raise ProofError("a proof of a withheld value carries neither the value nor another leaf")
    kh = sha256_digest(proof.key)
    leaf = sha256_digest(LEAF_PREFIX + kh + value_hash)
    if _fold(leaf, int.from_bytes(kh, "big"), proof.depth, proof.bitmap, proof.siblings) != root:
        raise ProofError(
            f"state proof of a withheld value for key {proof.key.hex()} does not lead to root "
            f"{root.hex()}"
        )
