"""Where the passphrase of a sealed key file comes from, in one place for every command.

In this order (the first that is given wins):

1. ``--passphrase-file FILE`` (``node start``) or ``CITYLEDGER_KEY_PASSPHRASE_FILE``;
2. a systemd credential: ``$CREDENTIALS_DIRECTORY/cityledger-key-passphrase``
   (``LoadCredential=`` / ``LoadCredentialEncrypted=`` in the unit; docs/operations.md);
3. ``CITYLEDGER_KEY_PASSPHRASE`` (an environment variable: visible to the process's
   owner in ``/proc/PID/environ``; prefer a file or a credential for services);
4. a prompt on the terminal, when the key is sealed.

A passphrase file must be readable by its owner only (like ssh's private keys): one that
others may read is refused with the ``chmod`` that fixes it. One trailing newline is
dropped (``echo secret > file`` works).
"""

from __future__ import annotations

import os
import stat

import click

from ledger.errors import KeyFileError
from ledger.keyfile import is_encrypted

PASSPHRASE_ENV = "CITYLEDGER_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "CITYLEDGER_KEY_PASSPHRASE_FILE"
CREDENTIAL = "cityledger-key-passphrase"
MAX_PASSPHRASE_BYTES = 4096


def passphrase_for(key_path: str, passphrase_file: str | None = None) -> str | None:
    """The passphrase for ``key_path`` (None for an unsealed key nobody gave one for)."""
    path = passphrase_file or os.environ.get(PASSPHRASE_FILE_ENV) or _credential()
    if path:
        return read_passphrase_file(path, checked_mode=path != _credential())
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None or not is_encrypted(key_path):
        return env
    value: str = click.prompt(f"Passphrase for {key_path}", hide_input=True, err=True)
    return value


def read_passphrase_file(path: str, *, checked_mode: bool = True) -> str:
    """The passphrase in ``path``; refused if others may read it (``checked_mode``: a
    systemd credential is the service manager's, and is not checked)."""
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(MAX_PASSPHRASE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    if checked_mode and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"the passphrase file {path} may be read by other users (mode "
            f"{stat.S_IMODE(mode):04o}): chmod 600 {path}"
        )
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise KeyFileError(f"the passphrase file {path} is over {MAX_PASSPHRASE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"the passphrase file {path} is not UTF-8 text") from None
    return text[:-1] if text.endswith("\n") else text


def _credential() -> str | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = os.path.join(directory, CREDENTIAL)
    return path if os.path.exists(path) else None
