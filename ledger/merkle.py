"""RFC 6962 / RFC 9162 Merkle trees: hashes, roots, proofs and their verification.

Everything follows RFC 9162 §2.1 to the letter, so that any certificate-transparency
tool can check our proofs:

* leaf hash ``SHA-256(0x00 || d)``, interior node ``SHA-256(0x01 || left || right)``;
* ``MTH`` of n > 1 leaves splits at k, the largest power of two below n;
* the empty tree's root is ``SHA-256("")`` (:data:`EMPTY_ROOT`).

**What the leaves are.** The block's tx root and the ledger's append-only log are
both trees over *transaction hashes*, and a transaction hash is the leaf **data**:
the leaf for transaction hash ``h`` is ``leaf_hash(h) = SHA-256(0x00 || h)``. Hashing
the leaf (rather than using ``h`` as a leaf hash) keeps the RFC's domain separation,
so no interior node can pass as a leaf. Use :func:`root_of` and friends with the
leaf data; the ``*_hashes`` variants take leaf hashes already computed.

The generators here (:func:`inclusion_proof`, :func:`consistency_proof`) are the
spec's recursive definitions over a list in memory: the reference the stored log
(:mod:`ledger.log`) is tested against. The verifiers are the bit-walking
algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, preceded by an exact proof-length
check so that the error says what is wrong. They raise :class:`ProofError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.digest import sha256_digest
from ledger.errors import ProofError, ValidationError
from ledger.schema import Bytes, Int, List, described, wire
from ledger.schema.records import Described

HASH_SIZE = 32
EMPTY_ROOT = sha256_digest(b"")
MAX_TREE_SIZE = 2**64 - 1
"""Sizes and indexes are 64-bit, as in RFC 9162's ``uint64 tree_size``."""
MAX_PATH = 64 * 2
"""No valid proof of a 64-bit tree is longer (inclusion <= 64, consistency <= 2*64)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --- hashing ----------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf (RFC 9162 §2.1.1)."""
    return sha256_digest(_LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return sha256_digest(_NODE_PREFIX + left + right)


def split_point(n: int) -> int:
    """k, the largest power of two strictly below ``n`` (n >= 2), where MTH splits."""
    assert n >= 2, n
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf *data* (each gets hashed as a leaf)."""
    return root_of_hashes([leaf_hash(d) for d in leaves])


def root_of_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, in O(n) hashing.

    Pairing neighbours level by level and carrying an odd last node up unchanged
    builds exactly the RFC's left-balanced tree (split at the largest power of two).
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def _parent_level(level: Sequence[bytes]) -> list[bytes]:
    """The level above: neighbours paired, an odd last node carried up unchanged."""
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


class MerkleLevels:
    """A tree kept whole, level by level, for many inclusion proofs of the same leaves.

    Built in O(n) hashing like :func:`root_of_hashes` (neighbours paired, an odd last
    node carried up unchanged, which is the RFC's tree); each proof is then O(log n)
    lookups: the sibling at every level where there is one. Tested against
    :func:`inclusion_proof_hashes`, the spec's definition.
    """

    __slots__ = ("levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = list(leaf_hashes)
        self.levels = [level]
        while len(level) > 1:
            level = _parent_level(level)
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.levels[0] else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[n]); the sibling nearest the leaf comes first."""
        if not 0 <= index < self.size:
            raise ValidationError(f"leaf index {index} is not in a tree of size {self.size}")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


# --- proof generation (the RFC's recursive definitions) ----------------------------------------


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) over leaf data (RFC 9162 §2.1.3.1)."""
    return inclusion_proof_hashes([leaf_hash(d) for d in leaves], index)


def inclusion_proof_hashes(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes; the sibling nearest the leaf comes first."""
    if not 0 <= index < len(leaf_hashes):
        raise ValidationError(f"leaf index {index} is not in a tree of size {len(leaf_hashes)}")
    return _path(index, leaf_hashes)


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(m, d[:k]), root_of_hashes(d[k:])]
    return [*_path(m - k, d[k:]), root_of_hashes(d[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) over leaf data (RFC 9162 §2.1.4.1)."""
    return consistency_proof_hashes([leaf_hash(d) for d in leaves], old_size)


def consistency_proof_hashes(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) over leaf hashes.

    The RFC defines it for 0 < old_size <= n; for old_size == 0 (the empty tree is
    a prefix of every tree) the proof is empty, which :func:`verify_consistency`
    accepts only together with ``old_root == EMPTY_ROOT``.
    """
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ValidationError(f"old size {old_size} is not between 0 and the tree size {n}")
    if old_size == 0:
        return []
    return _subproof(old_size, leaf_hashes, True)


def _subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [root_of_hashes(d)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete), root_of_hashes(d[k:])]
    return [*_subproof(m - k, d[k:], False), root_of_hashes(d[:k])]


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def inclusion_proof_length(index: int, tree_size: int) -> int:
    """How many hashes PATH(index, D[tree_size]) has (0 <= index < tree_size).

    ``inner`` levels sit below the point where the leaf's path and the tree's
    right border meet; above it, one sibling per left subtree along the border.
    """
    inner = (index ^ (tree_size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes PROOF(old_size, D[new_size]) has (0 < old_size < new_size).

    It is the inclusion path of the old tree's last leaf, minus the levels inside
    the old tree's rightmost perfect subtree, plus that subtree's own hash unless
    the old tree is that subtree (old_size a power of two).
    """
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if old_size == 1 << shift else 1
    return seed + inclusion_proof_length(old_size - 1, new_size) - shift


def root_from_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2)."""
    _check_hash(leaf_hash, "leaf hash")
    if index < 0 or tree_size < 0:
        raise ProofError(f"negative leaf index {index} or tree size {tree_size}")
    if index >= tree_size:
        raise ProofError(f"leaf index {index} is not in a tree of size {tree_size} (index >= size)")
    _check_path(proof, inclusion_proof_length(index, tree_size), f"index {index}, size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long: the path reached the root early")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short: the path ended below the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts ``leaf_hash`` at ``index`` under ``root``."""
    _check_hash(root, "root")
    computed = root_from_inclusion(leaf_hash, index, tree_size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for index {index} in size {tree_size} gives root "
            f"{computed.hex()}, not the expected {root.hex()} (root mismatch)"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the tree ``new_root`` extends the tree ``old_root``.

    RFC 9162 §2.1.4.2 covers 0 < old_size < new_size. The edge cases follow from
    the definitions: equal sizes need equal roots and an empty proof; the empty
    tree (old_size 0, root :data:`EMPTY_ROOT`) is a prefix of every tree, again
    with an empty proof.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if old_size < 0 or new_size < 0:
        raise ProofError(f"negative tree size (old {old_size}, new {new_size})")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    _check_path(
        proof, consistency_proof_length(old_size, new_size), f"sizes {old_size} -> {new_size}"
    )
    old_computed, new_computed = _roots_from_consistency(old_size, new_size, old_root, proof)
    if old_computed != old_root:
        raise ProofError(
            f"consistency proof {old_size} -> {new_size} gives old root {old_computed.hex()}, "
            f"not {old_root.hex()} (old root mismatch)"
        )
    if new_computed != new_root:
        raise ProofError(
            f"consistency proof {old_size} -> {new_size} gives new root {new_computed.hex()}, "
            f"not {new_root.hex()} (new root mismatch)"
        )


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise ProofError(
            f"consistency proof {old_size} -> {new_size} must be empty, it has {len(proof)} hashes"
        )
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError(f"old root of the empty tree must be {EMPTY_ROOT.hex()}")
    if old_size == new_size and old_root != new_root:
        raise ProofError(f"trees of the same size {old_size} have different roots")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 2-7 of RFC 9162 §2.1.4.2: the (old, new) roots the proof implies."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long: the path reached the root early")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short: the path ended below the root")
    return fr, sr


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {got}")


def _check_path(proof: Sequence[bytes], want: int, where: str) -> None:
    if len(proof) > want:
        raise ProofError(f"proof is too long: {len(proof)} hashes, {where} needs {want}")
    if len(proof) < want:
        raise ProofError(f"proof is too short: {len(proof)} hashes, {where} needs {want}")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")


# --- proof messages ---------------------------------------------------------------------------

_SIZE = Int(hi=MAX_TREE_SIZE)
_PATH = List(Bytes(size=HASH_SIZE), max_len=MAX_PATH, of="hashes")


@described("inclusion proof")
@dataclass(frozen=True, slots=True)
class InclusionProof(Described):
    """PATH for the leaf at ``leaf_index`` in the tree of ``tree_size`` leaves."""

    leaf_index: int = field(metadata=wire(_SIZE))
    tree_size: int = field(metadata=wire(_SIZE))
    path: tuple[bytes, ...] = field(metadata=wire(_PATH))

    def __post_init__(self) -> None:
        _check_size(self.leaf_index, "leaf_index", ValidationError)
        _check_size(self.tree_size, "tree_size", ValidationError)
        object.__setattr__(self, "path", _check_hashes(_given_path(self), ValidationError))

    def verify(self, leaf_hash: bytes, root: bytes) -> None:
        """Raise :class:`ProofError` unless this proves ``leaf_hash`` under ``root``."""
        verify_inclusion(leaf_hash, self.leaf_index, self.tree_size, self.path, root)


@described("consistency proof", sort_keys=True)
@dataclass(frozen=True, slots=True)
class ConsistencyProof(Described):
    """PROOF that the tree of ``new_size`` leaves extends the tree of ``old_size``."""

    old_size: int = field(metadata=wire(_SIZE))
    new_size: int = field(metadata=wire(_SIZE))
    path: tuple[bytes, ...] = field(metadata=wire(_PATH))

    def __post_init__(self) -> None:
        _check_size(self.old_size, "old_size", ValidationError)
        _check_size(self.new_size, "new_size", ValidationError)
        object.__setattr__(self, "path", _check_hashes(_given_path(self), ValidationError))

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        """Raise :class:`ProofError` unless this proves ``new_root`` extends ``old_root``."""
        verify_consistency(self.old_size, self.new_size, old_root, new_root, self.path)


def _given_path(proof: object) -> object:
    """A proof's ``path`` as given (a list is accepted and stored as a tuple): read as an
    object, since compiled code (mypyc) would refuse a list where a tuple is declared."""
    path: object = object.__getattribute__(proof, "path")
    return path


def _check_size(value: object, what: str, error: type[Exception]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise error(f"{what} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise error(f"{what} {value} is not between 0 and 2**64-1")
    return value


def _check_hashes(value: object, error: type[Exception]) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise error(f"path must be a list of hashes, got {type(value).__name__}")
    if len(value) > MAX_PATH:
        raise error(f"path has {len(value)} hashes, more than the {MAX_PATH} any proof needs")
    for i, h in enumerate(value):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            got = f"{len(h)} bytes" if isinstance(h, bytes) else type(h).__name__
            raise error(f"path hash {i} must be {HASH_SIZE} bytes, got {got}")
    return tuple(value)
