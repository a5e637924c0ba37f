"""Contract errors: one stable code per way a transaction can be refused.

Every refusal a client can cause is a :class:`ContractError`. Its ``code`` goes
into the receipt (so it is part of the consensus-critical results root and must
never change meaning), and its ``http_status`` is what the API answers with.
"""

from __future__ import annotations

from ledger.errors import LedgerError

# code -> HTTP status. 403: who you are; 409: the state (or nonce) says no;
# 400: the request itself is malformed; 404: it names something that does not exist.
HTTP_STATUS: dict[str, int] = {
    "wrong_chain": 400,
    "unknown_kind": 400,
    "bad_payload": 400,
    "bad_time": 400,
    "bad_meter_signature": 400,
    "unknown_sender": 403,
    "revoked": 403,
    "forbidden_role": 403,
    "forbidden": 403,
    "not_found": 404,
    "bad_nonce": 409,
    "duplicate": 409,
    "wrong_state": 409,
    "insufficient_balance": 409,
    "licence_required": 409,
    "meter_revoked": 409,
    "interval_open": 409,
    "limit_exceeded": 409,
    # governance (contracts/governance*.py)
    "consent_required": 403,
    "suspended": 403,
    "proposal_expired": 409,
    "rail_min_validators": 409,
    "rail_org_power": 409,
    "rail_liveness": 409,
    "rail_unsigned_pending": 409,
}


class ContractError(LedgerError):
    """A transaction the contracts refuse; ``code`` is a key of :data:`HTTP_STATUS`."""

    code = "bad_payload"

    def __init__(self, code: str, message: str) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unregistered contract error code {code!r}")
        super().__init__(message, code=code)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def __repr__(self) -> str:
        return f"ContractError({self.code!r}, {self.message!r})"


def bad_payload(message: str) -> ContractError:
    return ContractError("bad_payload", message)


def not_found(what: str, ident: str) -> ContractError:
    return ContractError("not_found", f"{what} {ident!r} does not exist")


def wrong_state(message: str) -> ContractError:
    return ContractError("wrong_state", message)


def forbidden(message: str) -> ContractError:
    return ContractError("forbidden", message)
