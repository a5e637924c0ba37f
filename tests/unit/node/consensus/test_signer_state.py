"""The signer state file (findings F2 and F1b, docs/reliability.md): its own durable file
outside the chain store, atomic replacement, damage detection, the start-up rules of
``open_signer`` (fresh, migration, missing, reset), the floor, and the locked block."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.encoding import decode, encode
from ledger.storage import MemoryStore
from ledger.storage import keys as K
from ledger.votes import NIL
from node.consensus.errors import DoubleSignRefused, SignerStateError
from node.consensus.signer import Signer, SignerStateFile, open_signer
from node.consensus.types import Step
from tests.sim.fixtures import CHAIN_ID, KEYS
from tests.unit.node.consensus.core_kit import PRECOMMIT, PREVOTE, A, B


def _file(tmp_path: Path) -> SignerStateFile:
    return SignerStateFile(str(tmp_path / "signer_state.msgpack"))


def test_the_file_survives_a_restart_and_refuses_what_the_key_signed(tmp_path: Path) -> None:
    f = _file(tmp_path)
    s = Signer(KEYS[0], CHAIN_ID, f)
    s.sign_proposal(4, 2, A, -1)
    signed = s.sign_vote(PREVOTE, 4, 2, A)
    assert f.exists() and not os.path.exists(f.path + ".tmp")
    assert stat.S_IMODE(os.stat(f.path).st_mode) == 0o600
    again = Signer(KEYS[0], CHAIN_ID, f)
    assert again.last_signed == (4, 2, int(Step.PREVOTE))
    assert again.sign_vote(PREVOTE, 4, 2, A).signature == signed.signature
    assert [m.round for m in again.signed_messages(4)] == [2, 2]
    with pytest.raises(DoubleSignRefused):
        again.sign_vote(PREVOTE, 4, 2, NIL)
    with pytest.raises(DoubleSignRefused):
        again.sign_vote(PREVOTE, 3, 9, A)


def test_nothing_is_signed_unless_the_file_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = _file(tmp_path)
    s = Signer(KEYS[0], CHAIN_ID, f)
    s.sign_vote(PREVOTE, 1, 0, A)

    def broken(body: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(f, "write", broken)
    with pytest.raises(OSError):
        s.sign_vote(PRECOMMIT, 1, 0, A)
    assert s.last_signed == (1, 0, int(Step.PREVOTE))
    assert Signer(KEYS[0], CHAIN_ID, _file(tmp_path)).last_signed == (1, 0, int(Step.PREVOTE))


def _rewritten_file(tmp_path: Path, rewrite: Callable[[bytes], bytes]) -> SignerStateFile:
    """A signer file that holds one prevote at height 7, its bytes then passed through
    ``rewrite``."""
    f = _file(tmp_path)
    Signer(KEYS[0], CHAIN_ID, f).sign_vote(PREVOTE, 7, 0, A)
    path = Path(f.path)
    path.write_bytes(rewrite(path.read_bytes()))
    return f


def _damaged(raw: bytes, damage: str) -> bytes:
    out = bytearray(raw)
    if damage == "flip":
        out[len(out) // 2] ^= 0x10
    elif damage == "truncate":
        del out[len(out) // 2 :]
    elif damage == "garbage":
        out = bytearray(b"\x93garbage")
    else:
        out = bytearray()
    return bytes(out)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_a_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    f = _rewritten_file(tmp_path, lambda raw: _damaged(raw, damage))
    with pytest.raises(SignerStateError, match="damaged"):
        Signer(KEYS[0], CHAIN_ID, f)


def _height_changed_to_1(raw: bytes) -> bytes:
    outer = decode(raw)
    body = decode(outer["body"])
    body["state"]["height"] = 1  # a plausible but wrong state
    outer["body"] = encode(body)
    return encode(outer)


def test_the_checksum_catches_a_change_that_still_decodes(tmp_path: Path) -> None:
    f = _rewritten_file(tmp_path, _height_changed_to_1)
    with pytest.raises(SignerStateError, match="checksum"):
        Signer(KEYS[0], CHAIN_ID, f)


def test_a_file_of_another_key_or_chain_is_refused(tmp_path: Path) -> None:
    f = _file(tmp_path)
    Signer(KEYS[0], CHAIN_ID, f).sign_vote(PREVOTE, 1, 0, A)
    with pytest.raises(SignerStateError, match="another validator key"):
        Signer(KEYS[1], CHAIN_ID, f)
    with pytest.raises(SignerStateError, match="chain"):
        Signer(KEYS[0], "another-chain", f)


# --- start-up rules -----------------------------------------------------------------------


def test_a_new_validator_starts_fresh_and_writes_its_file(tmp_path: Path) -> None:
    f = _file(tmp_path)
    s = open_signer(KEYS[0], CHAIN_ID, f, MemoryStore(), chain_height=0)
    assert f.exists() and s.last_signed is None
    s.sign_vote(PREVOTE, 1, 0, A)


def test_a_missing_file_with_a_chain_is_refused_with_the_remedy(tmp_path: Path) -> None:
    with pytest.raises(SignerStateError, match="--reset-signer-state") as info:
        open_signer(KEYS[0], CHAIN_ID, _file(tmp_path), MemoryStore(), chain_height=12)
    assert "missing" in str(info.value) and "12 blocks" in str(info.value)


def test_the_state_moves_from_the_chain_store_into_the_file(tmp_path: Path) -> None:
    store = MemoryStore()
    old = Signer(KEYS[0], CHAIN_ID, store)
    old.sign_vote(PREVOTE, 9, 1, A)
    signed = old.sign_vote(PRECOMMIT, 9, 1, A)
    assert any(True for _ in store.iterate(K.SIGNER))
    f = _file(tmp_path)
    s = open_signer(KEYS[0], CHAIN_ID, f, store, chain_height=8)
    assert s.last_signed == (9, 1, int(Step.PRECOMMIT))
    assert not any(True for _ in store.iterate(K.SIGNER))  # moved, not copied
    lock = s.lock(9)
    assert lock is not None and lock.block_hash == A
    assert len(s.signed_messages(9)) == 2
    # the file alone now carries the guard
    again = open_signer(KEYS[0], CHAIN_ID, f, store, chain_height=8)
    assert again.sign_vote(PRECOMMIT, 9, 1, A).signature == signed.signature
    with pytest.raises(DoubleSignRefused):
        again.sign_vote(PRECOMMIT, 9, 1, B)


def test_the_file_wins_over_a_leftover_in_the_store(tmp_path: Path) -> None:
    f = _file(tmp_path)
    Signer(KEYS[0], CHAIN_ID, f).sign_vote(PREVOTE, 20, 0, A)
    store = MemoryStore()
    Signer(KEYS[0], CHAIN_ID, store).sign_vote(PREVOTE, 3, 0, A)
    s = open_signer(KEYS[0], CHAIN_ID, f, store, chain_height=19)
    assert s.last_signed == (20, 0, int(Step.PREVOTE))
    assert not any(True for _ in store.iterate(K.SIGNER))


def test_an_emptied_store_does_not_erase_the_guard(tmp_path: Path) -> None:
    """F2: the remedy for a damaged store (an empty data directory) keeps the file."""
    f = _file(tmp_path)
    first = open_signer(KEYS[0], CHAIN_ID, f, MemoryStore(), chain_height=0)
    first.sign_proposal(1, 0, A, -1)
    first.sign_vote(PREVOTE, 1, 0, A)
    wiped = open_signer(KEYS[0], CHAIN_ID, f, MemoryStore(), chain_height=0)
    for attempt in (
        lambda: wiped.sign_proposal(1, 0, B, -1),
        lambda: wiped.sign_vote(PREVOTE, 1, 0, B),
    ):
        with pytest.raises(DoubleSignRefused):
            attempt()


def test_reset_keeps_the_damaged_file_aside_and_signs_only_above_the_floor(
    tmp_path: Path,
) -> None:
    f = _file(tmp_path)
    Signer(KEYS[0], CHAIN_ID, f).sign_vote(PREVOTE, 5, 0, A)
    Path(f.path).write_bytes(b"junk")
    with pytest.raises(SignerStateError):
        open_signer(KEYS[0], CHAIN_ID, f, MemoryStore(), chain_height=5)
    s = open_signer(KEYS[0], CHAIN_ID, f, MemoryStore(), chain_height=5, reset=True)
    aside = [p for p in os.listdir(tmp_path) if ".reset-" in p]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes() == b"junk"
    assert s.floor_pending
    with pytest.raises(DoubleSignRefused, match="reset"):
        s.sign_vote(PREVOTE, 100, 0, A)
    # a restart before catching up keeps refusing
    assert Signer(KEYS[0], CHAIN_ID, f).floor_pending
    s.raise_floor(30)  # the node caught up to 29: nothing at 30 either
    with pytest.raises(DoubleSignRefused, match="floor"):
        s.sign_vote(PREVOTE, 30, 0, A)
    s.sign_vote(PREVOTE, 31, 0, A)
    restarted = Signer(KEYS[0], CHAIN_ID, f)
    assert restarted.floor == 30 and not restarted.floor_pending


def test_nothing_is_signed_at_or_below_the_committed_head() -> None:
    committed = [10]
    s = Signer(KEYS[0], CHAIN_ID, committed_height=lambda: committed[0])
    with pytest.raises(DoubleSignRefused, match="committed head 10"):
        s.sign_vote(PREVOTE, 10, 0, A)
    s.sign_vote(PREVOTE, 11, 0, A)
    committed[0] = 11
    with pytest.raises(DoubleSignRefused):
        s.sign_vote(PRECOMMIT, 11, 0, A)


# --- the locked block (F1b) ---------------------------------------------------------------


def test_the_locked_block_is_kept_with_the_lock_and_only_for_its_height(tmp_path: Path) -> None:
    f = _file(tmp_path)
    blocks = {A: b"block A bytes", B: b"block B bytes"}
    asked: list[bytes] = []

    def source(h: bytes) -> bytes | None:
        asked.append(h)
        return blocks.get(h)

    s = Signer(KEYS[0], CHAIN_ID, f)
    s.block_source = source
    s.sign_proposal(3, 0, A, -1)
    s.sign_vote(PREVOTE, 3, 0, A)
    assert asked == [] and s.lock_block(3) is None  # no lock yet, nothing kept
    s.sign_vote(PRECOMMIT, 3, 0, A)
    assert s.lock_block(3) == b"block A bytes"
    s.sign_vote(PREVOTE, 3, 1, NIL)  # later votes at the height keep the lock and block
    s.sign_vote(PRECOMMIT, 3, 1, NIL)
    restarted = Signer(KEYS[0], CHAIN_ID, f)  # a crash before the block was written
    lock = restarted.lock(3)
    assert lock is not None and lock.block_hash == A
    assert restarted.lock_block(3) == b"block A bytes"
    restarted.block_source = source
    restarted.sign_vote(PREVOTE, 3, 2, B)
    restarted.sign_vote(PRECOMMIT, 3, 2, B)  # a new lock replaces the block
    assert Signer(KEYS[0], CHAIN_ID, f).lock_block(3) == b"block B bytes"
    restarted.sign_vote(PREVOTE, 4, 0, A)  # the next height: no block kept
    assert Signer(KEYS[0], CHAIN_ID, f).lock_block(4) is None
    assert b"block B bytes" not in Path(f.path).read_bytes()


def test_the_locked_block_in_the_store_form_too() -> None:
    store = MemoryStore()
    s = Signer(KEYS[0], CHAIN_ID, store)
    s.block_source = {A: b"block A"}.get
    s.sign_vote(PRECOMMIT, 2, 0, A)
    assert Signer(KEYS[0], CHAIN_ID, store).lock_block(2) == b"block A"
    s.sign_vote(PREVOTE, 3, 0, NIL)
    assert Signer(KEYS[0], CHAIN_ID, store).lock_block(3) is None
    assert store.get(K.SIGNER + b"block") is None
