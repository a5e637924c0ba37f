"""Governance parameters, read from ``genesis.app`` with defaults and ranges.

``gov_threshold``
    ``{"num": N, "den": D}``: a proposal executes once approvals from *more
    than* N/D of the founding agencies are counted. Default 2/3; N/D must lie
    in [1/2, 1) so that two conflicting proposals cannot both pass.
``gov_consent_roles``
    roles only an executed ``role-grant`` proposal may give (never a direct
    registration). Default customs, auditor, energy_regulator, permit_office.
``gov_proposal_ttl``
    heights a proposal stays open for approvals. Default 1000 (1 .. 1 000 000).
``gov_liveness_window``
    N of the liveness rail: a validator is running when it signed within the
    last N heights. Default 100 (1 .. 100 000).
``min_validators``
    the least validators a change may leave. Default 4 (1 .. 200); genesis
    checks read the same key with the same default.

These live in the genesis only (not in state, not settable by ``params-set``):
the rules that govern changes are not themselves changed by those rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.context import TxContext
from ledger.encoding import Value
from ledger.errors import ValidationError
from ledger.founding_checks import DEFAULT_MIN_VALIDATORS, MIN_VALIDATORS_KEY
from ledger.genesis import ROLES, Genesis

DEFAULT_CONSENT_ROLES = ("auditor", "customs", "energy_regulator", "permit_office")
NEVER_CONSENT = frozenset({"admin", "meter"})  # admins are how organisations run themselves
GOV_INT_RANGES: dict[str, tuple[int, int]] = {
    "gov_proposal_ttl": (1, 1_000_000),
    "gov_liveness_window": (1, 100_000),
    MIN_VALIDATORS_KEY: (1, 200),
}


@dataclass(frozen=True, slots=True)
class GovParams:
    threshold_num: int = 2
    threshold_den: int = 3
    consent_roles: frozenset[str] = frozenset(DEFAULT_CONSENT_ROLES)
    gov_proposal_ttl: int = 1000
    gov_liveness_window: int = 100
    min_validators: int = DEFAULT_MIN_VALIDATORS

    def __post_init__(self) -> None:
        num, den = self.threshold_num, self.threshold_den
        if not 1 <= den <= 1000 or not den <= 2 * num < 2 * den:
            raise ValidationError("genesis app.gov_threshold must be num/den in [1/2, 1)")
        bad = sorted(self.consent_roles - (ROLES - NEVER_CONSENT))
        if bad:
            raise ValidationError(f"genesis app.gov_consent_roles: {bad} cannot need consent")
        for name, (lo, hi) in GOV_INT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValidationError(f"genesis app.{name} must be an integer {lo} .. {hi}")

    def needed(self, founders: int) -> int:
        """Approvals needed among ``founders`` founding agencies: more than num/den of them."""
        return self.threshold_num * founders // self.threshold_den + 1

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> GovParams:
        return cls.from_app(genesis.app)

    @classmethod
    def from_app(cls, app: dict[str, Value]) -> GovParams:
        defaults = cls()
        threshold = app.get("gov_threshold", {"num": 2, "den": 3})
        if not isinstance(threshold, dict) or set(threshold) != {"num", "den"}:
            raise ValidationError("genesis app.gov_threshold must be {num, den}")
        num, den = threshold["num"], threshold["den"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (num, den)):
            raise ValidationError("genesis app.gov_threshold num and den must be integers")
        roles = app.get("gov_consent_roles", list(DEFAULT_CONSENT_ROLES))
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValidationError("genesis app.gov_consent_roles must be a list of roles")
        ints = {name: app.get(name, getattr(defaults, name)) for name in GOV_INT_RANGES}
        return cls(num, den, frozenset(roles), **ints)


def gov_params(ctx: TxContext) -> GovParams:
    """The governance parameters of the chain ``ctx`` runs on (checked by ``genesis_state``,
    so a chain with bad ones never starts)."""
    return GovParams.from_app(ctx.genesis.app)
