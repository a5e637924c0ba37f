"""RFC 6962 / RFC 9162 Merkle trees: golden vectors, rejected proofs, properties.

The golden data in tests/vectors/rfc6962/ is copied from transparency-dev/merkle
(the successor of trillian's merkle package, used by certificate-transparency-go);
each file names its source. Negative cases port that project's
``corruptInclusionProof`` / ``corruptConsistencyProof`` probes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import FrozenInstanceError
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import DecodeError, ProofError, ValidationError
from ledger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_of,
    root_of_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent.parent / "vectors" / "rfc6962"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


TREE = _load("tree.json")
LEAVES = [bytes.fromhex(x) for x in TREE["leaves"]]
ROOTS = [bytes.fromhex(x) for x in TREE["roots"]]
NODES = [[bytes.fromhex(x) for x in row] for row in TREE["node_hashes"]]
INCLUSION = _load("inclusion.json")["proofs"]
CONSISTENCY = _load("consistency.json")["proofs"]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _path(p: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(x) for x in p["path"]]


def _flip(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ (1 << bit)]) + out[i][1:]
    return out


# --- golden vectors ---------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == ROOTS[0]
    assert root_of([]) == root_of_hashes([]) == EMPTY_ROOT


def test_leaf_and_node_hashes_match_vectors() -> None:
    assert [leaf_hash(d) for d in LEAVES] == NODES[0]
    for level in range(1, len(NODES)):
        for i, h in enumerate(NODES[level]):
            assert node_hash(NODES[level - 1][2 * i], NODES[level - 1][2 * i + 1]) == h


@pytest.mark.parametrize("size", range(9))
def test_root_matches_vector(size: int) -> None:
    assert root_of(LEAVES[:size]) == ROOTS[size]
    assert root_of_hashes(NODES[0][:size]) == ROOTS[size]


@pytest.mark.parametrize("vec", INCLUSION, ids=lambda v: f"{v['leaf_index']}of{v['tree_size']}")
def test_inclusion_vector(vec: dict[str, Any]) -> None:
    index, size, path = vec["leaf_index"], vec["tree_size"], _path(vec)
    assert inclusion_proof(LEAVES[:size], index) == path
    assert root_from_inclusion(NODES[0][index], index, size, path) == ROOTS[size]
    verify_inclusion(NODES[0][index], index, size, path, ROOTS[size])


@pytest.mark.parametrize("vec", CONSISTENCY, ids=lambda v: f"{v['old_size']}to{v['new_size']}")
def test_consistency_vector(vec: dict[str, Any]) -> None:
    old, new, path = vec["old_size"], vec["new_size"], _path(vec)
    assert consistency_proof(LEAVES[:new], old) == path
    verify_consistency(old, new, ROOTS[old], ROOTS[new], path)


# --- rejected inclusion proofs ----------------------------------------------------------------


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes, str | None]]:
    """(desc, index, size, proof, root, leaf, expected message fragment)."""
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf, None),
        ("index + 1", index + 1, size, proof, root, leaf, None),
        ("index ^ 2", index ^ 2, size, proof, root, leaf, None),
        ("size * 2", index, size * 2, proof, root, leaf, None),
        ("size // 2", index, size // 2, proof, root, leaf, None),
        ("wrong leaf", index, size, proof, root, leaf_hash(b"WrongLeaf"), "root mismatch"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf, "root mismatch"),
        ("random root", index, size, proof, SOME_HASH, leaf, "root mismatch"),
        ("trailing garbage", index, size, [*proof, b""], root, leaf, "too long"),
        ("trailing root", index, size, [*proof, root], root, leaf, "too long"),
        ("preceding garbage", index, size, [b"", *proof], root, leaf, "too long"),
        ("preceding root", index, size, [root, *proof], root, leaf, "too long"),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 3", index, size, _flip(proof, i, 3), root, leaf, "root"))
    if proof:
        probes.append(("truncated", index, size, proof[:-1], root, leaf, "too short"))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", index, size, inserted, root, leaf, "too long"))
    return probes


INCLUSION_PROBES = [
    (f"{v['leaf_index']}of{v['tree_size']}: {probe[0]}", *probe[1:])
    for v in INCLUSION
    for probe in _inclusion_probes(
        v["leaf_index"], v["tree_size"], _path(v), ROOTS[v["tree_size"]], NODES[0][v["leaf_index"]]
    )
]


@pytest.mark.parametrize(
    ("desc", "index", "size", "proof", "root", "leaf", "message"),
    INCLUSION_PROBES,
    ids=[p[0] for p in INCLUSION_PROBES],
)
def test_corrupted_inclusion_rejected(
    desc: str,
    index: int,
    size: int,
    proof: list[bytes],
    root: bytes,
    leaf: bytes,
    message: str | None,
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_inclusion(leaf, index, size, proof, root)


def test_inclusion_index_at_or_beyond_size() -> None:
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (9, 8)]:
        with pytest.raises(ProofError, match=r"index >= size"):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="negative"):
        verify_inclusion(SOME_HASH, -1, 8, _path(INCLUSION[1]), ROOTS[8])


def test_inclusion_wrong_hash_sizes() -> None:
    good = _path(INCLUSION[1])
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(b"", 0, 8, good, ROOTS[8])
    with pytest.raises(ProofError, match="root must be 32 bytes"):
        verify_inclusion(NODES[0][0], 0, 8, good, ROOTS[8][:31])
    with pytest.raises(ProofError, match="proof hash 1 must be 32 bytes"):
        verify_inclusion(NODES[0][0], 0, 8, [good[0], good[1] + b"\x00", good[2]], ROOTS[8])


def test_single_leaf_tree() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)
    with pytest.raises(ProofError, match="root mismatch"):
        verify_inclusion(h, 0, 1, [], SOME_HASH)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(h, 0, 1, [h], node_hash(h, h))


def test_left_right_order_matters() -> None:
    """Which side each sibling goes on comes from the index: a mirrored index must fail."""
    a, b = NODES[0][4], NODES[0][5]
    assert node_hash(a, b) != node_hash(b, a)
    path = _path(INCLUSION[2])  # leaf 5 of 8: its level-0 sibling (leaf 4) is on the left
    assert root_from_inclusion(b, 5, 8, path) == ROOTS[8]
    with pytest.raises(ProofError, match="root mismatch"):
        verify_inclusion(b, 4, 8, path, ROOTS[8])
    path = _path(INCLUSION[1])  # leaf 0 of 8: every sibling is on the right
    with pytest.raises(ProofError, match="root mismatch"):
        verify_inclusion(NODES[0][0], 7, 8, path, ROOTS[8])


# --- rejected consistency proofs --------------------------------------------------------------


def _consistency_probes(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes], str | None]]:
    probes = [
        ("old - 1", old - 1, new, r1, r2, proof, None),
        ("old + 1", old + 1, new, r1, r2, proof, None),
        ("old ^ 2", old ^ 2, new, r1, r2, proof, None),
        ("new * 2", old, new * 2, r1, r2, proof, None),
        ("new // 2", old, new // 2, r1, r2, proof, None),
        # With old a power of two the old root seeds the path, so it shows in the new root.
        ("wrong old root", old, new, SOME_HASH, r2, proof, "root mismatch"),
        ("wrong new root", old, new, r1, SOME_HASH, proof, "new root mismatch"),
        ("short old root", old, new, r1[:9], r2, proof, "32 bytes"),
        ("swapped roots", old, new, r2, r1, proof, "mismatch"),
        ("empty proof", old, new, r1, r2, [], "too short"),
        ("trailing garbage", old, new, r1, r2, [*proof, b""], "too long"),
        ("trailing root1", old, new, r1, r2, [*proof, r1], "too long"),
        ("trailing root2", old, new, r1, r2, [*proof, r2], "too long"),
        ("preceding garbage", old, new, r1, r2, [b"", *proof], "too long"),
        ("preceding root1", old, new, r1, r2, [r1, *proof], "too long"),
        ("preceding root2", old, new, r1, r2, [r2, *proof], "too long"),
        ("preceding proof[0]", old, new, r1, r2, [proof[0], *proof], "too long"),
        ("truncated", old, new, r1, r2, proof[:-1], "too short"),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 4", old, new, r1, r2, _flip(proof, i, 4), "mismatch"))
    return probes


CONSISTENCY_PROBES = [
    (f"{v['old_size']}to{v['new_size']}: {probe[0]}", *probe[1:])
    for v in CONSISTENCY
    if v["path"]
    for probe in _consistency_probes(
        v["old_size"], v["new_size"], ROOTS[v["old_size"]], ROOTS[v["new_size"]], _path(v)
    )
]


@pytest.mark.parametrize(
    ("desc", "old", "new", "r1", "r2", "proof", "message"),
    CONSISTENCY_PROBES,
    ids=[p[0] for p in CONSISTENCY_PROBES],
)
def test_corrupted_consistency_rejected(
    desc: str,
    old: int,
    new: int,
    r1: bytes,
    r2: bytes,
    proof: list[bytes],
    message: str | None,
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, r1, r2, proof)


R1, R2 = leaf_hash(b"one"), leaf_hash(b"two")


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "message"),
    [
        # Equal sizes: equal roots, empty proof.
        (1, 1, R1, R2, [], "different roots"),
        (8, 8, ROOTS[8], ROOTS[7], [], "different roots"),
        (1, 1, R1, R1, [EMPTY_ROOT], "must be empty"),
        # The empty tree: its root is SHA-256(""), and the proof is empty.
        (0, 0, R1, R1, [], "empty tree"),
        (0, 5, R1, ROOTS[5], [], "empty tree"),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], "must be empty"),
        (0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT], "must be empty"),
        (0, 0, EMPTY_ROOT, R1, [], "different roots"),
        # Time travel to the past.
        (1, 0, R1, R2, [], "larger than new size"),
        (2, 1, R1, R2, [], "larger than new size"),
        (8, 6, ROOTS[8], ROOTS[6], [], "larger than new size"),
        (-1, 3, EMPTY_ROOT, ROOTS[3], [], "negative"),
        # A real extension needs a proof.
        (1, 2, ROOTS[1], ROOTS[2], [], "too short"),
        (4, 8, ROOTS[4], ROOTS[8], [], "too short"),
    ],
)
def test_consistency_size_rules(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, r1, r2, proof)


@pytest.mark.parametrize(("old", "new"), [(0, 0), (0, 1), (0, 8), (1, 1), (3, 3), (8, 8)])
def test_trivial_consistency_accepted(old: int, new: int) -> None:
    verify_consistency(old, new, ROOTS[old], ROOTS[new], [])


# --- proof lengths and reference definitions --------------------------------------------------


def _mth(d: Sequence[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 defines it, recursively (leaf hashes in)."""
    if len(d) == 1:
        return d[0]
    k = merkle.split_point(len(d))
    return node_hash(_mth(d[:k]), _mth(d[k:]))


@cache
def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_lengths_match_generated_proofs() -> None:
    for n in range(1, 70):
        hashes = _leaves(n)
        for i in range(n):
            proof = merkle.inclusion_proof_hashes(hashes, i)
            assert len(proof) == merkle.inclusion_proof_length(i, n)
        for m in range(1, n):
            proof = merkle.consistency_proof_hashes(hashes, m)
            assert len(proof) == merkle.consistency_proof_length(m, n)


def test_every_small_proof_verifies() -> None:
    for n in range(1, 40):
        hashes = _leaves(n)
        roots = [root_of_hashes(hashes[:m]) for m in range(n + 1)]
        assert roots[n] == _mth(hashes)
        for i in range(n):
            verify_inclusion(hashes[i], i, n, merkle.inclusion_proof_hashes(hashes, i), roots[n])
        for m in range(n + 1):
            proof = merkle.consistency_proof_hashes(hashes, m)
            verify_consistency(m, n, roots[m], roots[n], proof)


def test_generator_argument_checks() -> None:
    with pytest.raises(ValidationError):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(ValidationError):
        inclusion_proof([], 0)
    with pytest.raises(ValidationError):
        consistency_proof(LEAVES, 9)
    with pytest.raises(ValidationError):
        consistency_proof(LEAVES, -1)
    assert consistency_proof(LEAVES, 0) == []


# --- proof messages ---------------------------------------------------------------------------


def test_proof_objects_round_trip_and_verify() -> None:
    inc = InclusionProof(5, 8, tuple(_path(INCLUSION[2])))
    assert InclusionProof.from_obj(inc.to_obj()) == inc
    assert inc.to_obj() == {"leaf_index": 5, "tree_size": 8, "path": list(inc.path)}
    inc.verify(NODES[0][5], ROOTS[8])
    con = ConsistencyProof(6, 8, tuple(_path(CONSISTENCY[2])))
    assert ConsistencyProof.from_obj(con.to_obj()) == con
    con.verify(ROOTS[6], ROOTS[8])
    with pytest.raises(ProofError):
        con.verify(ROOTS[5], ROOTS[8])
    with pytest.raises(FrozenInstanceError):
        inc.leaf_index = 4  # type: ignore[misc]
    # A list given to the constructor is stored as a tuple (hashable, immutable).
    assert InclusionProof(0, 1, []).path == ()  # type: ignore[arg-type]


H = SOME_HASH


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (None, "must be a map"),
        ([0, 1, []], "must be a map"),
        ({"leaf_index": 0, "tree_size": 1}, "exactly the fields"),
        ({"leaf_index": 0, "tree_size": 1, "path": [], "extra": 1}, "exactly the fields"),
        ({"leaf_index": True, "tree_size": 1, "path": []}, "integer"),
        ({"leaf_index": "0", "tree_size": 1, "path": []}, "integer"),
        ({"leaf_index": 0, "tree_size": -1, "path": []}, "between"),
        ({"leaf_index": 0, "tree_size": 2**64, "path": []}, "between"),
        ({"leaf_index": 0, "tree_size": 1, "path": H}, "list of hashes"),
        ({"leaf_index": 0, "tree_size": 1, "path": [H[:31]]}, "32 bytes, got 31"),
        ({"leaf_index": 0, "tree_size": 1, "path": [H + b"\x00"]}, "32 bytes, got 33"),
        ({"leaf_index": 0, "tree_size": 1, "path": [H.hex()]}, "got str"),
        ({"leaf_index": 0, "tree_size": 1, "path": [H] * 129}, "more than the 128"),
    ],
)
def test_inclusion_from_obj_rejects(obj: object, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        InclusionProof.from_obj(obj)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"old_size": 1, "new_size": 2}, "exactly the fields"),
        ({"old_size": 1.0, "new_size": 2, "path": [H]}, "integer"),
        ({"old_size": 1, "new_size": 2, "path": [bytearray(H)]}, "got bytearray"),
        ({"old_size": 1, "new_size": 2, "path": [H] * 129}, "more than the 128"),
    ],
)
def test_consistency_from_obj_rejects(obj: object, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        ConsistencyProof.from_obj(obj)


def test_from_obj_accepts_maximal_path() -> None:
    obj = {"old_size": 1, "new_size": 2, "path": [H] * 128}
    assert len(ConsistencyProof.from_obj(obj).path) == 128


def test_constructor_validates() -> None:
    with pytest.raises(ValidationError):
        InclusionProof(-1, 1, ())
    with pytest.raises(ValidationError):
        ConsistencyProof(0, 1, (b"short",))


# --- properties -------------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=80, unique=True)


@settings(max_examples=200, deadline=None)
@given(leaf_lists, st.data())
def test_property_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    hashes = [leaf_hash(d) for d in leaves]
    root = root_of(leaves)
    assert root == _mth(hashes)
    proof = inclusion_proof(leaves, index)
    verify_inclusion(hashes[index], index, n, proof, root)
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != index), label="other")
    with pytest.raises(ProofError):
        verify_inclusion(hashes[index], other, n, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(hashes[other], index, n, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        bad = list(proof)
        bad[i] = (int.from_bytes(bad[i], "big") ^ (1 << bit)).to_bytes(32, "big")
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, n, bad, root)


@settings(max_examples=200, deadline=None)
@given(leaf_lists, st.data())
def test_property_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    old = data.draw(st.integers(0, n), label="old")
    old_root, new_root = root_of(leaves[:old]), root_of(leaves)
    proof = consistency_proof(leaves, old)
    verify_consistency(old, n, old_root, new_root, proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = _flip(proof, i, data.draw(st.integers(0, 7), label="bit"))
        with pytest.raises(ProofError):
            verify_consistency(old, n, old_root, new_root, bad)
        with pytest.raises(ProofError):
            verify_consistency(old, n, old_root, new_root, [*proof, proof[-1]])
        with pytest.raises(ProofError):
            verify_consistency(old, n, old_root, new_root, proof[1:])
    if 0 < old < n:
        with pytest.raises(ProofError):
            verify_consistency(old, n, old_root, root_of([*leaves[:-1], b"x" * 41]), proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_levels_give_the_specs_root_and_paths(n: int, data: st.DataObject) -> None:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    tree = merkle.MerkleLevels(hashes)
    assert tree.size == n and tree.root == root_of_hashes(hashes)
    for index in {0, n - 1, data.draw(st.integers(min_value=0, max_value=n - 1))}:
        assert tree.inclusion_proof(index) == merkle.inclusion_proof_hashes(hashes, index)


def test_levels_of_no_leaves_and_a_bad_index() -> None:
    assert merkle.MerkleLevels([]).root == EMPTY_ROOT
    with pytest.raises(ValidationError, match="leaf index 3 is not in a tree of size 3"):
        merkle.MerkleLevels([EMPTY_ROOT] * 3).inclusion_proof(3)
