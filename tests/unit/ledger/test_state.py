"""The authenticated state: roots, proofs and their encoding.

The tree is checked against :func:`~tests.unit.ledger.state_kit.reference_root`, a direct
transcription of docs/formats-state.md §1 written independently of ``ledger.state``, and
against the pinned vectors of §5, so a change to the hashing fails here even if the tree
and the verifier change together. History, storage back ends, overlays and the pages a
walk reads: test_state_storage.py.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import encoding
from ledger.errors import DecodeError, ProofError, ValidationError
from ledger.state import EMPTY_ROOT, StateProof, StateTree, verify_state_proof
from ledger.storage import MemoryStore, WriteBatch
from tests.unit.ledger.changes_kit import apply_changes
from tests.unit.ledger.state_kit import Items, commit, filled_state, key, reference_root
from tests.unit.ledger.state_kit import sha256 as _h


@pytest.fixture
def filled() -> tuple[MemoryStore, bytes, Items]:
    """200 entries, committed in four blocks."""
    return filled_state()


# --- roots ------------------------------------------------------------------------------------


VECTORS = [
    ({}, "00" * 32),
    ({b"alice": b"100"}, "e88595db6e2373140c77336108e543dd79e1c6420dff08568b120417c8af88b5"),
    (
        {b"alice": b"100", b"bob": b"200"},
        "38aa0ada94ff3ee34417ed647542474fe1ee43ffa7c53595bdbc43dcb4bc2dec",
    ),
    (
        {b"alice": b"100", b"bob": b"200", b"carol": b""},
        "ffd25646fea70bec37c175bdc453925f2c253e8ff1902af24b1390471793f9f1",
    ),
]


@pytest.mark.parametrize(("items", "root_hex"), VECTORS)
def test_pinned_vectors(items: Items, root_hex: str) -> None:
    assert reference_root(items).hex() == root_hex
    tree = StateTree(MemoryStore())
    assert tree.apply(dict(items), WriteBatch(), height=1).hex() == root_hex
    assert tree.root.hex() == root_hex


def test_empty_root_is_32_zero_bytes() -> None:
    assert bytes(32) == EMPTY_ROOT
    assert StateTree(MemoryStore()).root == EMPTY_ROOT


def test_matches_reference_over_random_blocks() -> None:
    rng = random.Random(1234)
    for seed in range(20):
        store, root, model = MemoryStore(), EMPTY_ROOT, dict[bytes, bytes]()
        universe = rng.choice([4, 30, 300])
        for _ in range(12):
            changes: dict[bytes, bytes | None] = {}
            for _ in range(rng.choice([1, 2, 7, 60])):
                k = key(rng.randrange(universe))
                changes[k] = None if rng.random() < 0.35 else rng.randbytes(rng.randrange(3))
            root = commit(store, root, changes)
            apply_changes(model, changes.items())
            assert root == reference_root(model), f"seed {seed}"


changes_strategy = st.dictionaries(
    st.binary(max_size=6), st.one_of(st.none(), st.binary(max_size=4)), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(
    initial=st.dictionaries(st.binary(max_size=6), st.binary(max_size=4), max_size=40),
    changes=changes_strategy,
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=4),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_root_independent_of_order_and_batching(
    initial: Items, changes: dict[bytes, bytes | None], cuts: list[int], seed: int
) -> None:
    final = dict(initial)
    apply_changes(final, changes.items())
    # One batch of the final map...
    one = StateTree(MemoryStore()).apply(dict(final), WriteBatch(), height=1)
    assert one == reference_root(final)
    # ...equals the initial map then the changes, split into shuffled blocks.
    ops = list(changes.items())
    random.Random(seed).shuffle(ops)
    blocks, last = [], 0
    for cut in sorted(min(c, len(ops)) for c in cuts):
        blocks.append(dict(ops[last:cut]))
        last = cut
    blocks.append(dict(ops[last:]))
    store = MemoryStore()
    root = commit(store, EMPTY_ROOT, dict(initial))
    for block in blocks:
        root = commit(store, root, block)
    assert root == one


def test_deleting_every_key_gives_the_empty_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    assert commit(store, root, dict.fromkeys(items)) == EMPTY_ROOT
    # One by one too, in a shuffled order, through the historic root.
    order = list(items)
    random.Random(5).shuffle(order)
    for k in order:
        root = commit(store, root, {k: None})
    assert root == EMPTY_ROOT


def test_noop_changes_keep_the_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    same = {k: items[k] for k in list(items)[:10]}
    assert commit(store, root, {**same, b"never-set": None}) == root
    assert StateTree(store, root).apply({}, WriteBatch(), height=9) == root


# --- proofs -----------------------------------------------------------------------------------


def test_membership_and_both_kinds_of_absence(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    tree = StateTree(store, root)
    for k, v in items.items():
        proof = tree.prove(k)
        assert proof.value == v and proof.is_member
        verify_state_proof(root, proof)
    kinds = set()
    for i in range(1000, 1300):
        proof = tree.prove(key(i))
        assert proof.value is None
        verify_state_proof(root, proof)
        kinds.add(proof.other_key_hash is None)
    assert kinds == {True, False}, "absence at an empty subtree and at another leaf"


def test_proofs_are_compact(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proofs = [StateTree(store, root).prove(key(i)) for i in range(200)]
    assert all(len(p.siblings) <= p.depth for p in proofs)
    assert any(len(p.siblings) < p.depth for p in proofs), "empty siblings are left out"
    assert max(p.depth for p in proofs) < 30


def test_single_entry_and_empty_state_proofs() -> None:
    store = MemoryStore()
    empty = StateTree(store).prove(b"x")
    assert (empty.depth, empty.siblings, empty.value) == (0, (), None)
    verify_state_proof(EMPTY_ROOT, empty)
    root = commit(store, EMPTY_ROOT, {b"only": b"1"})
    member = StateTree(store, root).prove(b"only")
    assert (member.depth, member.value) == (0, b"1")
    verify_state_proof(root, member)
    other = StateTree(store, root).prove(b"x")
    assert other.other_key_hash == _h(b"only")
    verify_state_proof(root, other)


def rejects(root: bytes, proof: StateProof) -> bool:
    try:
        verify_state_proof(root, proof)
    except ProofError:
        return True
    return False


def test_tampered_value_key_and_root_are_rejected(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    proof = tree.prove(key(7))
    assert rejects(root, dataclasses.replace(proof, value=b"v8"))
    assert rejects(root, dataclasses.replace(proof, value=b""))
    assert rejects(root, dataclasses.replace(proof, value=None)), "present key claimed absent"
    for other in (key(8), key(7) + b"\x00", b""):
        assert rejects(root, dataclasses.replace(proof, key=other))
    other_root = commit(store, root, {key(7): b"changed"})
    assert rejects(other_root, proof)
    assert rejects(EMPTY_ROOT, proof)
    for i in range(5000, 5040):  # both kinds of absence proof
        absent = tree.prove(key(i))
        forged = dataclasses.replace(
            absent, value=b"forged", other_key_hash=None, other_value_hash=None
        )
        assert rejects(root, forged), "absent key claimed present"
        assert rejects(root, dataclasses.replace(absent, key=key(7)))


def test_every_flipped_sibling_is_rejected(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(3), key(4000)):
        proof = tree.prove(k)
        assert proof.siblings
        for i, sibling in enumerate(proof.siblings):
            flipped = bytes([sibling[0] ^ 1]) + sibling[1:]
            siblings = (*proof.siblings[:i], flipped, *proof.siblings[i + 1 :])
            assert rejects(root, dataclasses.replace(proof, siblings=siblings)), (k, i)
        # Turning an empty sibling into a real one (bitmap bit set, hash inserted).
        for level in range(proof.depth):
            if _bit(proof.bitmap, level):
                continue
            before = sum(_bit(proof.bitmap, j) for j in range(level))
            siblings = (*proof.siblings[:before], _h(b"x"), *proof.siblings[before:])
            forged = dataclasses.replace(
                proof, bitmap=_set_bit(proof.bitmap, level), siblings=siblings
            )
            assert rejects(root, forged)


def test_truncated_and_padded_paths_are_rejected(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(3), key(4000)):
        proof = tree.prove(k)
        # One level fewer: drop the deepest level (and its sibling, if any).
        depth = proof.depth - 1
        keep = sum(_bit(proof.bitmap, j) for j in range(depth))
        shorter = dataclasses.replace(
            proof, depth=depth, bitmap=_bitmap(proof.bitmap, depth), siblings=proof.siblings[:keep]
        )
        assert rejects(root, shorter)
        # Drop the top level instead.
        top = _bit(proof.bitmap, 0)
        bits = [_bit(proof.bitmap, j) for j in range(1, proof.depth)]
        dropped_top = dataclasses.replace(
            proof, depth=depth, bitmap=_pack(bits), siblings=proof.siblings[top:]
        )
        assert rejects(root, dropped_top)
        # One level more, with an empty or a real sibling.
        for extra in (None, _h(b"pad")):
            bits = [_bit(proof.bitmap, j) for j in range(proof.depth)] + [extra is not None]
            siblings = proof.siblings + ((extra,) if extra is not None else ())
            longer = dataclasses.replace(
                proof, depth=proof.depth + 1, bitmap=_pack(bits), siblings=siblings
            )
            assert rejects(root, longer)


def test_sibling_list_must_match_the_bitmap(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proof = StateTree(store, root).prove(key(3))
    obj = proof.to_obj()
    for siblings in (proof.siblings[:-1], (*proof.siblings, _h(b"pad")), ()):
        with pytest.raises(DecodeError, match="siblings"):
            StateProof.from_obj({**obj, "siblings": list(siblings)})
        with pytest.raises(ValidationError):
            dataclasses.replace(proof, siblings=siblings)


def test_absence_leaf_must_be_on_the_path(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    tree = StateTree(store, root)
    absent = next(p for i in range(1000, 2000) if (p := tree.prove(key(i))).other_key_hash)
    assert absent.other_key_hash is not None and absent.other_value_hash is not None
    # The other leaf's value hash, key hash, and a leaf elsewhere in the tree.
    assert rejects(root, dataclasses.replace(absent, other_value_hash=_h(b"?")))
    assert rejects(root, dataclasses.replace(absent, other_key_hash=_h(b"?")))
    elsewhere = next(_h(k) for k in items if _h(k)[0] >> 7 != absent.other_key_hash[0] >> 7)
    with pytest.raises(ProofError, match="not on the key's path"):
        verify_state_proof(root, dataclasses.replace(absent, other_key_hash=elsewhere))
    # A membership proof dressed up as absence, naming the key's own leaf.
    member = tree.prove(key(3))
    own = dataclasses.replace(
        member, value=None, other_key_hash=_h(key(3)), other_value_hash=_h(items[key(3)])
    )
    with pytest.raises(ProofError, match="own leaf"):
        verify_state_proof(root, own)


def test_verify_rejects_a_malformed_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proof = StateTree(store, root).prove(key(1))
    with pytest.raises(ProofError):
        verify_state_proof(root[:31], proof)


# --- encoding ---------------------------------------------------------------------------------


def test_to_obj_round_trips_through_the_canonical_encoding(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(1), key(1000), key(1001), key(1002)):
        proof = tree.prove(k)
        back = StateProof.from_obj(encoding.decode(encoding.encode(proof.to_obj())))
        assert back == proof
        verify_state_proof(root, back)


def _malformed(good: dict[str, Any]) -> Iterator[object]:
    yield None
    yield [good]
    yield {k: v for k, v in good.items() if k != "depth"}
    yield {**good, "extra": 1}
    yield {**good, "key": "text"}
    yield {**good, "value": 5}
    yield {**good, "depth": True}
    yield {**good, "depth": -1}
    yield {**good, "depth": 257}
    yield {**good, "depth": good["depth"] + 8}  # bitmap now too short
    yield {**good, "bitmap": good["bitmap"] + b"\x00"}
    yield {**good, "bitmap": "c0"}
    yield {**good, "siblings": tuple(good["siblings"])}
    yield {**good, "siblings": [s[:31] for s in good["siblings"]]}
    yield {**good, "siblings": [bytes(32)] * len(good["siblings"])}  # empty belongs in bitmap
    yield {**good, "siblings": ["ab" * 16] * len(good["siblings"])}
    yield {**good, "other_key_hash": bytes(32)}  # without its value hash
    yield {**good, "other_key_hash": b"1" * 31, "other_value_hash": b"2" * 32}
    yield {**good, "value": b"v", "other_key_hash": b"1" * 32, "other_value_hash": b"2" * 32}


def test_from_obj_rejects_malformed_proofs(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    good = StateTree(store, root).prove(key(1)).to_obj()
    assert StateProof.from_obj(good).to_obj() == good
    depth = good["depth"]
    assert isinstance(depth, int)
    # A padding bit set below the depth.
    bitmap = good["bitmap"]
    assert isinstance(bitmap, bytes)
    if depth % 8:
        padded = bitmap[:-1] + bytes([bitmap[-1] | 1])
        with pytest.raises(DecodeError, match="below"):
            StateProof.from_obj({**good, "bitmap": padded})
    for i, bad in enumerate(_malformed(good)):
        with pytest.raises(DecodeError):
            StateProof.from_obj(bad)
            pytest.fail(f"malformed proof {i} was accepted")


# --- helpers ----------------------------------------------------------------------------------


def _bit(bitmap: bytes, level: int) -> bool:
    return bool((bitmap[level // 8] >> (7 - level % 8)) & 1)


def _pack(bits: list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def _bitmap(bitmap: bytes, depth: int) -> bytes:
    return _pack([_bit(bitmap, j) for j in range(depth)])


def _set_bit(bitmap: bytes, level: int) -> bytes:
    out = bytearray(bitmap)
    out[level // 8] |= 0x80 >> (level % 8)
    return bytes(out)
