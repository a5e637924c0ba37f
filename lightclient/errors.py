"""What the light client raises when an answer does not check out."""

from __future__ import annotations

from typing import Any

from ledger.errors import LedgerError, ProofError


class VerificationError(ProofError):
    """An answer that does not check out against the genesis validator set."""

    code = "verification_failed"


class RedactedError(LedgerError):
    """The node redacted what this reader may not see: not a lie, a missing key."""

    code = "redacted"


def answer_field(obj: Any, name: str, what: str) -> Any:
    """``obj[name]``; a :class:`VerificationError` naming ``what`` lacks it otherwise."""
    if not isinstance(obj, dict) or name not in obj:
        raise VerificationError(f"{what} has no {name!r}")
    return obj[name]
