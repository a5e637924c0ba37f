"""A validator's consensus key rotated on a running network (issue 18).

Three steps, each by the party that holds what it needs:

1. ``cityledger node rotate-key --home H`` (:func:`prepare`): a fresh key in
   ``next_node_key.json`` (sealed with the current key's passphrase if that one is) and,
   beside it, ``next_signer_state.msgpack``: the empty double-sign record of the new key,
   written the moment the key is born — it has signed nothing, and the node later opens
   that record instead of assuming a missing one is new.
2. The founding agencies vote ``gov propose validator-rotate --public-key OLD --new-key
   H/next_node_key.json`` (the new key proves possession); it is in force from H+2.
3. The running node sees the set that votes on its next height hold the new key and not
   the old one (:func:`rotation_due`) and switches by itself: it stops its parts, moves
   the files (:func:`switch`) and opens again, in the same process, under the new key —
   signer, peer-link identity, TLS certificate and API identity alike. Peers already let
   the new key link: they follow the set two heights ahead (:mod:`node.membership`).

Double signing: the old key can sign nothing from the effective height (it holds no
power there, and the consensus core signs only with power); after the switch its signer is
gone and its record moves to ``retired/<first 16 hex of the key>/`` with the key file, so
no later start can pick it up. The new key's record is its own file from step 1: a signer
state is per key, and the signer refuses to open another key's.

A switch stopped half-way (power cut) is finished at the next start
(:func:`finish_interrupted`): every step is a rename that is either done or not.
"""

from __future__ import annotations

import logging
import os
import shutil

from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.keyfile import PRIVATE_DIR_MODE, read_key_file, write_key_file
from ledger.validators import ValidatorSet
from node.config import Home
from node.consensus.signer import Signer, SignerStateFile
from node.tls import rotate_tls_key

log = logging.getLogger("cityledger.node")

NEXT_KEY = "next_node_key.json"
NEXT_SIGNER_STATE = "next_signer_state.msgpack"
RETIRED = "retired"


class RotationError(LedgerError):
    """A key rotation step that cannot be done as asked (nothing was changed)."""

    code = "rotation"


def next_key_path(home: Home) -> str:
    return os.path.join(home.path, NEXT_KEY)


def next_state_path(home: Home) -> str:
    return os.path.join(home.path, NEXT_SIGNER_STATE)


def retired_dir(home: Home, public_key: bytes) -> str:
    return os.path.join(home.path, RETIRED, public_key.hex()[:16])


def prepare(home: Home, chain_id: str, passphrase: str | None) -> PrivateKey:
    """Write a fresh next key and its empty signer state; refuse if one is waiting."""
    path = next_key_path(home)
    if os.path.lexists(path):
        waiting = read_key_file(path, passphrase).public_key.hex()
        raise RotationError(
            f"{path} already holds a next key ({waiting}): propose that one, or delete "
            f"{path} and {next_state_path(home)} to make another"
        )
    key = PrivateKey.generate()
    state = next_state_path(home)
    if os.path.lexists(state):
        os.unlink(state)  # left by a run that stopped before writing the key: never used
    Signer(key, chain_id, SignerStateFile(state)).save()
    write_key_file(path, key, passphrase)
    return key


def read_next_key(home: Home, passphrase: str | None) -> PrivateKey | None:
    """The key waiting in the home for a rotation, if any."""
    path = next_key_path(home)
    if not os.path.lexists(path):
        return None
    return read_key_file(path, passphrase)


def rotation_due(validators: ValidatorSet, current: bytes, upcoming: bytes) -> bool:
    """Whether the set voting on the node's next height has handed the seat over:
    ``upcoming`` votes there and ``current`` does not."""
    return upcoming in validators and current not in validators


def switch(home: Home, current: PrivateKey, upcoming: PrivateKey) -> str:
    """Retire ``current`` (its key file and signer state into :func:`retired_dir`) and put
    ``upcoming`` and its signer state in their place; a new TLS key and certificate
    issued by ``upcoming``. Returns the retired directory."""
    aside = retired_dir(home, current.public_key)
    for directory in (os.path.dirname(aside), aside):  # owner only, like the home
        os.makedirs(directory, mode=PRIVATE_DIR_MODE, exist_ok=True)
    for path in (home.key, home.signer_state):
        kept = os.path.join(aside, os.path.basename(path))
        if os.path.lexists(path) and not os.path.lexists(kept):
            shutil.copy2(path, kept)  # a copy first: a cut here leaves the home as it was
            _sync(kept)
    os.replace(next_key_path(home), home.key)
    finish_interrupted(home, upcoming)
    return aside


def finish_interrupted(home: Home, key: PrivateKey) -> None:
    """Complete a switch that a power cut stopped after the key file moved: a TLS
    certificate issued by ``key``, then ``key``'s signer state into place. Does nothing
    for a home that is not mid-switch (a waiting next key, or no next signer state of
    ``key``: a state :func:`prepare` left without its key belongs to no key in use)."""
    state = next_state_path(home)
    if os.path.lexists(next_key_path(home)) or not os.path.lexists(state):
        return
    if SignerStateFile(state).read().get("validator") != key.public_key:
        return
    if os.path.lexists(home.tls_key):  # else the node makes one at start (ensure_identity)
        rotate_tls_key(home.tls_key, home.tls_cert, key)
    os.replace(state, home.signer_state)
    log.info(
        "switched to the new key %s…: signer state and TLS certificate", key.public_key.hex()[:16]
    )


def _sync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
