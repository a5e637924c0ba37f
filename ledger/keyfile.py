"""Key files: an Ed25519 seed on disk, mode 0600, optionally sealed with a passphrase.

Format (JSON, one object):
``{"cityledger_key": 1, "public_key": hex, "encryption": "none", "seed": hex}`` or
``{"cityledger_key": 1, "public_key": hex, "encryption": "argon2id+xsalsa20poly1305",
"salt": hex, "opslimit": int, "memlimit": int, "ciphertext": hex}`` where the key is
derived with libsodium's ``crypto_pwhash`` (Argon2id) and the seed sealed with
``SecretBox``. JSON rather than msgpack because operators open these files by hand.
"""

from __future__ import annotations

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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o600)


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
