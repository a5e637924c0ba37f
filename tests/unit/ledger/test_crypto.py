"""Domain-separated Ed25519 signatures and key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ledger.crypto import PrivateKey, Purpose, is_valid_signature, signing_bytes, verify
from ledger.errors import KeyFileError, SignatureError
from ledger.keyfile import is_encrypted, read_key_file, write_key_file


def test_signature_verifies_only_for_its_purpose_chain_and_message() -> None:
    key = PrivateKey.from_label("alice")
    sig = key.sign(Purpose.TRANSACTION, "chain-a", b"hello")
    verify(key.public_key, Purpose.TRANSACTION, "chain-a", b"hello", sig)
    assert not is_valid_signature(key.public_key, Purpose.VOTE, "chain-a", b"hello", sig)
    assert not is_valid_signature(key.public_key, Purpose.TRANSACTION, "chain-b", b"hello", sig)
    assert not is_valid_signature(key.public_key, Purpose.TRANSACTION, "chain-a", b"hellO", sig)
    other = PrivateKey.from_label("bob")
    assert not is_valid_signature(other.public_key, Purpose.TRANSACTION, "chain-a", b"hello", sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    with pytest.raises(SignatureError, match="bad transaction signature"):
        verify(key.public_key, Purpose.TRANSACTION, "chain-a", b"hello", flipped)


def test_purpose_tags_are_distinct_and_chain_id_is_length_prefixed() -> None:
    tags = [p.value for p in Purpose]
    assert len(set(tags)) == len(tags)
    # "ab" + message "c..." must not collide with chain "abc" + message "...".
    assert signing_bytes(Purpose.VOTE, "ab", b"cx") != signing_bytes(Purpose.VOTE, "abc", b"x")


def test_wrong_sizes_are_signature_errors() -> None:
    key = PrivateKey.from_label("alice")
    with pytest.raises(SignatureError):
        verify(key.public_key[:31], Purpose.VOTE, "c", b"m", bytes(64))
    with pytest.raises(SignatureError):
        verify(key.public_key, Purpose.VOTE, "c", b"m", bytes(63))


def test_plain_key_file_round_trip_and_mode(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = str(tmp_path / "k.json")
    write_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not is_encrypted(path)
    assert read_key_file(path).public_key == key.public_key


def test_encrypted_key_file(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = str(tmp_path / "k.json")
    write_key_file(path, key, passphrase="correct horse")
    assert is_encrypted(path)
    assert key.seed.hex() not in Path(path).read_text()
    assert read_key_file(path, "correct horse").public_key == key.public_key
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_key_file(path, "wrong")
    with pytest.raises(KeyFileError, match="passphrase is needed"):
        read_key_file(path)


def test_key_file_refuses_overwrite_and_reports_corruption(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_key_file(str(path), PrivateKey.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(str(path), PrivateKey.generate())
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(KeyFileError, match="not a readable key file"):
        read_key_file(str(path))
    with pytest.raises(KeyFileError, match="no key file"):
        read_key_file(str(tmp_path / "missing.json"))


def test_key_file_with_mismatched_public_key_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_key_file(str(path), PrivateKey.from_label("a"))
    text = path.read_text().replace(
        PrivateKey.from_label("a").public_key.hex(), PrivateKey.from_label("b").public_key.hex()
    )
    path.write_text(text)
    with pytest.raises(KeyFileError, match="does not match"):
        read_key_file(str(path))
