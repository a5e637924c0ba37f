"""The one exception hierarchy of CityLedger.

Every error a peer, a client or a corrupt file can cause is a subclass of
:class:`LedgerError`, carries a stable machine-readable ``code`` and a human
message, and is answered (HTTP status, peer score, CLI exit) — never a crash.
``assert`` is kept for our own invariants only.
"""

from __future__ import annotations

from typing import Self


class LedgerError(Exception):
    """Base of every error CityLedger raises on purpose."""

    code: str = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def as_answer(self) -> Self:
        """This error, kept as an answer (a refusal in a list of results, a rejection
        effect), without its traceback and the exception it was raised from: their
        frames would hold the list that holds it, a cycle that only the cyclic
        collector frees — with every frame's locals, a whole batch, until it runs."""
        self.__traceback__ = None
        self.__context__ = None
        self.__cause__ = None
        return self


class DecodeError(LedgerError):
    """Bytes that are not the canonical encoding of a valid value."""

    code = "malformed"


class ValidationError(LedgerError):
    """A well-formed value that breaks a rule (bad field, wrong size, bad range)."""

    code = "invalid"


class SignatureError(LedgerError):
    """A signature that does not verify for the claimed key, chain and purpose."""

    code = "bad_signature"


class KeyFileError(LedgerError):
    """A key file that is missing, corrupt, or whose passphrase is wrong."""

    code = "key_file"


class ProofError(LedgerError):
    """A Merkle, state or certificate proof that does not check out."""

    code = "bad_proof"


class CertificateError(ProofError):
    """A commit certificate that does not carry >2/3 of the validator set's power."""

    code = "bad_certificate"


class StorageError(LedgerError):
    """The store cannot be opened, is locked by another process, or is corrupt."""

    code = "storage"


class StoreLockedError(StorageError):
    """Another process holds the database directory."""

    code = "store_locked"


class StoreMissingError(StorageError):
    """No store where one must be: only ``cityledger node init`` creates it."""

    code = "store_missing"


class CorruptionError(StorageError):
    """Stored bytes do not decode or do not match their hash."""

    code = "corrupt"


class StoreDamagedError(CorruptionError):
    """LevelDB found this node's own store damaged or unreadable (a checksum mismatch,
    a truncated or unreadable file): the fault is on this node's disk, never in what a
    peer sent, and the node cannot go on trusting its store.

    ``damaged``: (file name in the store directory, what its damaged part holds) for
    every table file found damaged (ledger/storage/damage.py), so that an auditor's
    message can name them in the audited directory rather than in a private copy."""

    code = "store_damaged"

    def __init__(self, message: str, *, damaged: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.damaged = damaged
