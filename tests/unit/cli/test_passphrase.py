"""Where a sealed key's passphrase comes from (cli/passphrase.py): a file, a systemd
credential, the environment, a prompt — in that order; a file others may read is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.passphrase import passphrase_for, read_passphrase_file
from ledger.crypto import PrivateKey
from ledger.errors import KeyFileError
from ledger.keyfile import write_key_file


@pytest.fixture
def sealed(tmp_path: Path) -> str:
    path = str(tmp_path / "key.json")
    write_key_file(path, PrivateKey(b"\x07" * 32), "from the file")
    return path


def secret_file(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CITYLEDGER_KEY_PASSPHRASE", "CITYLEDGER_KEY_PASSPHRASE_FILE",
                 "CREDENTIALS_DIRECTORY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_a_file_wins_over_the_environment_and_loses_one_trailing_newline(
    sealed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYLEDGER_KEY_PASSPHRASE", "from the environment")
    path = secret_file(tmp_path / "pass", "from the file\n")
    assert passphrase_for(sealed, path) == "from the file"
    monkeypatch.setenv("CITYLEDGER_KEY_PASSPHRASE_FILE", path)
    assert passphrase_for(sealed) == "from the file"
    assert read_passphrase_file(secret_file(tmp_path / "two", "a\n\n")) == "a\n"


def test_a_systemd_credential_comes_before_the_environment(
    sealed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    secret_file(credentials / "cityledger-key-passphrase", "credential\n", mode=0o440)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.setenv("CITYLEDGER_KEY_PASSPHRASE", "from the environment")
    assert passphrase_for(sealed) == "credential"  # the service manager's mode is its own
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "none-here"))
    assert passphrase_for(sealed) == "from the environment"


def test_a_file_others_may_read_is_refused_with_the_fix(sealed: str, tmp_path: Path) -> None:
    path = secret_file(tmp_path / "pass", "secret", mode=0o644)
    with pytest.raises(KeyFileError, match=rf"mode 0644\): chmod 600 {path}"):
        passphrase_for(sealed, path)


def test_unreadable_oversize_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the passphrase file"):
        read_passphrase_file(str(tmp_path / "missing"))
    with pytest.raises(KeyFileError, match="over 4096 bytes"):
        read_passphrase_file(secret_file(tmp_path / "big", "x" * 5000))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    os.chmod(binary, 0o600)
    with pytest.raises(KeyFileError, match="not UTF-8"):
        read_passphrase_file(str(binary))


def test_an_unsealed_key_needs_no_passphrase_and_prompts_for_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "open.json")
    write_key_file(path, PrivateKey(b"\x08" * 32), None)
    assert passphrase_for(path) is None
