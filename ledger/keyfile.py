"""Key files: an Ed25519 seed on disk, mode 0600, optionally sealed with a passphrase.

Format (JSON, one object):
``{"cityledger_key": 1, "public_key": hex, "encryption": "none", "seed": hex}`` or
``{"cityledger_key": 1, "public_key": hex, "encryption": "argon2id+xsalsa20poly1305",
"salt": hex, "opslimit": int, "memlimit": int, "ciphertext": hex}`` where the key is
derived with libsodium's ``crypto_pwhash`` (Argon2id) and the seed sealed with
``SecretBox``. JSON rather than msgpack because operators open these files by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ledger.crypto import SEED_SIZE, PrivateKey
from ledger.errors import KeyFileError

FORMAT_VERSION = 1
SEALED = "argon2id+xsalsa20poly1305"
# Interactive limits: about 0.1 s and 64 MiB per unlock on a laptop.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
KEY_FILE_MODE = 0o600  # from the first byte: see write_private_file
PRIVATE_DIR_MODE = 0o700  # node homes, data directories, key directories
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_key_file(path: str, key: PrivateKey, passphrase: str | None = None) -> None:
    """Write ``key`` to a new file readable only by its owner (mode 0600)."""
    doc: dict[str, Any] = {"cityledger_key": FORMAT_VERSION, "public_key": key.public_key.hex()}
    if passphrase:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
        doc |= {
            "encryption": SEALED,
            "salt": salt.hex(),
            "opslimit": OPSLIMIT,
            "memlimit": MEMLIMIT,
            "ciphertext": bytes(box.encrypt(key.seed)).hex(),
        }
    else:
        doc |= {"encryption": "none", "seed": key.seed.hex()}
    write_private_file(path, (json.dumps(doc, indent=2) + "\n").encode())


def copy_key_file(source: str, dest: str) -> None:
    """Copy a key file byte for byte (sealed stays sealed) to a new file, mode 0600 from
    its creation: never a copy first and a ``chmod`` after, which leaves a moment when
    the seed is readable by others."""
    _load_doc(source)  # a key file, not anything an operator mistyped
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise KeyFileError(f"cannot read {source}: {exc}") from None
    write_private_file(dest, data)


def write_private_file(path: str, data: bytes) -> None:
    """Create ``path`` (never over an existing file) readable and writable by its owner only.

    The file is created by ``open(2)`` with ``O_CREAT | O_EXCL`` and mode 0600, so no
    instant exists in which another user could open it (``O_EXCL`` also refuses a symlink
    planted at ``path``); the umask can only narrow that mode, and ``fchmod`` on the open
    descriptor, before any byte is written, makes it exactly 0600 whatever the umask."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, KEY_FILE_MODE)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc}") from None
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise KeyFileError(f"cannot write {path}: {exc}") from None
    os.close(fd)


def make_private_dir(path: str) -> int | None:
    """Create ``path`` (and its missing parents) with mode 0700 on the last component, or
    tighten it to 0700 if it exists. Returns the mode it had before when it existed with
    more open permissions (for a note to the operator), else None."""
    before: int | None = None
    try:
        os.makedirs(path, mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            before = mode
    os.chmod(path, PRIVATE_DIR_MODE)  # makedirs' mode went through the umask
    return before


def exposed(path: str) -> int | None:
    """The permission bits of ``path`` if group or others have any access to it, else None
    (also None if it does not exist)."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None
    return mode if mode & 0o077 else None


def is_encrypted(path: str) -> bool:
    """Whether the key file at ``path`` needs a passphrase."""
    return _load_doc(path).get("encryption") == SEALED


def read_key_file(path: str, passphrase: str | None = None) -> PrivateKey:
    """Load a key; a wrong passphrase or corrupt file raises :class:`KeyFileError`."""
    doc = _load_doc(path)
    encryption = doc.get("encryption")
    try:
        if encryption == "none":
            seed = bytes.fromhex(doc["seed"])
        elif encryption == SEALED:
            if not passphrase:
                raise KeyFileError(f"{path} is encrypted: a passphrase is needed")
            salt = bytes.fromhex(doc["salt"])
            key = _derive(passphrase, salt, int(doc["opslimit"]), int(doc["memlimit"]))
            try:
                seed = nacl.secret.SecretBox(key).decrypt(bytes.fromhex(doc["ciphertext"]))
            except nacl.exceptions.CryptoError:
                raise KeyFileError(
                    f"wrong passphrase for {path} (or the file was altered)"
                ) from None
        else:
            raise KeyFileError(f"{path}: unknown encryption {encryption!r}")
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is corrupt: {exc}") from None
    if len(seed) != SEED_SIZE:
        raise KeyFileError(f"{path} is corrupt: the seed is not {SEED_SIZE} bytes")
    key_obj = PrivateKey(seed)
    if key_obj.public_key.hex() != doc.get("public_key"):
        raise KeyFileError(f"{path} is corrupt: the public key does not match the seed")
    return key_obj


def _load_doc(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path} is not a readable key file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("cityledger_key") != FORMAT_VERSION:
        raise KeyFileError(f"{path} is not a CityLedger key file (version {FORMAT_VERSION})")
    return doc


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    kdf = nacl.pwhash.argon2id.kdf
    return bytes(kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit))
