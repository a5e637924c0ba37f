"""What the light client raises when an answer does not check out."""

from __future__ import annotations

from typing import Any

from ledger.errors import LedgerError, ProofError


class VerificationError(ProofError):
    """An answer that does not check out against the genesis validator set."""

    code = "verification_failed"


class GenesisMismatch(VerificationError):
    """The answer is from a chain that did not start from the genesis file the user holds.

    Not tampering: the node serves another chain (another chain id, or another
    validator set). ``theirs`` is the genesis hash the answer points to when the
    client knows it (block 1's ``prev_hash``, a bundle's or a store's genesis hash).
    """

    code = "genesis_mismatch"

    def __init__(self, detail: str, ours: bytes, theirs: bytes | None = None) -> None:
        self.detail = detail
        self.ours = ours
        self.theirs = theirs
        super().__init__(self._text())

    def _text(self) -> str:
        theirs = "unknown" if self.theirs is None else self.theirs.hex()
        return (
            f"genesis mismatch: this chain's genesis is {theirs}, yours is {self.ours.hex()} "
            f"({self.detail}); use the genesis file of the chain you mean to ask"
        )

    def naming(self, theirs: bytes) -> GenesisMismatch:
        """The same mismatch, naming the other chain's genesis hash."""
        return GenesisMismatch(self.detail, self.ours, theirs)


class RedactedError(LedgerError):
    """The node redacted what this reader may not see: not a lie, a missing key."""

    code = "redacted"


def answer_field(obj: Any, name: str, what: str) -> Any:
    """``obj[name]``; a :class:`VerificationError` naming ``what`` lacks it otherwise."""
    if not isinstance(obj, dict) or name not in obj:
        raise VerificationError(f"{what} has no {name!r}")
    return obj[name]
