"""Validator-set changes from governance: the one door to the consensus side.

Everything here reads the block's validator set and each key's last signed
height from the context, which the consensus side provides
(``ctx.validators``, ``ctx.last_signed_height(key)``,
``ctx.schedule_validator_updates(updates)`` with effect at height H+2;
contracts/validator_state.py, docs/consensus.md "Validator-set changes");
:func:`schedule` is the only place an update leaves the contracts.

Which organisation owns a validator: ``gov/validator/<hex>`` once governance
added or re-keyed it; for a genesis validator, the organisation genesis names in
``validator_orgs`` (every founded network names one); failing both (an old genesis),
the organisation whose id is its name if there is one, else a pseudo-organisation of
its own (``validator:<name>``), so the one-third rail treats it as independent.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.errors import ContractError
from contracts.governance_params import gov_params
from contracts.governance_rails import Change, Seat, check_rails
from contracts.governance_records import (
    SCHEDULED_KEY,
    Scheduled,
    ScheduledList,
    ValidatorOwner,
    validator_owner_key,
)
from ledger.validators import ValidatorUpdate

EFFECT_DELAY = 2  # a change scheduled at H is in force from H+2


def schedule(ctx: TxContext, updates: Sequence[ValidatorUpdate]) -> int:
    """Hand ``updates`` to consensus; returns the height they take effect at."""
    ctx.schedule_validator_updates(list(updates))
    return ctx.height + EFFECT_DELAY


def owner_of(ctx: TxContext, public_key: bytes, name: str) -> str:
    """The organisation a validator belongs to (module docstring)."""
    record = ctx.record(validator_owner_key(public_key), ValidatorOwner)
    if record is not None:
        return record.org
    named = ctx.genesis.org_of_validator(public_key)  # genesis validator_orgs
    if named is not None:
        return named
    if ctx.get(sk.org_key(name)) is not None:
        return name
    return f"validator:{name}"


def pending_updates(ctx: TxContext) -> tuple[Scheduled, ...]:
    """Updates scheduled earlier that are not in force at this height yet."""
    record = ctx.record(SCHEDULED_KEY, ScheduledList)
    if record is None:
        return ()
    return tuple(u for u in record.updates if u.effective_height > ctx.height)


def seats(ctx: TxContext) -> list[tuple[Seat, str]]:
    """The set as it will stand once scheduled updates are in force: (seat, name)."""
    out = {
        v.public_key: (Seat(v.public_key, v.power, owner_of(ctx, v.public_key, v.name)), v.name)
        for v in ctx.validators.validators
    }
    for u in pending_updates(ctx):
        if u.power == 0:
            out.pop(u.public_key, None)
        else:
            out[u.public_key] = (Seat(u.public_key, u.power, u.org), u.name)
    return list(out.values())


def check_changes(ctx: TxContext, changes: Sequence[Change]) -> None:
    """Refuse ``changes`` with the code of the first rail they break."""
    current = [seat for seat, _ in seats(ctx)]
    keys = {s.public_key for s in current} | {c.public_key for c in changes}
    last_signed = {k: ctx.last_signed_height(k) for k in keys}
    params = gov_params(ctx)
    code = check_rails(
        current,
        changes,
        last_signed,
        ctx.height,
        params.gov_liveness_window,
        params.min_validators,
    )
    if code is not None:
        raise ContractError(code, RAIL_MESSAGES[code])


RAIL_MESSAGES = {
    "rail_min_validators": "the change would leave fewer validators than the genesis minimum",
    "rail_org_power": "the change would let one organisation hold 1/3 or more of the power",
    "rail_liveness": "the change would leave 2/3 or less of the power with validators that "
    "signed recently: bring the new node up first, or change less at once",
    "rail_unsigned_pending": "a validator that has not signed a block yet is already in the "
    "set: wait until it signs",
}


def apply_changes(ctx: TxContext, changes: Sequence[Change], names: dict[bytes, str]) -> int:
    """Schedule ``changes`` and record them; returns the effective height."""
    effective = ctx.height + EFFECT_DELAY
    kept = pending_updates(ctx)
    new = tuple(
        Scheduled(c.public_key, c.power, names[c.public_key], c.org, effective) for c in changes
    )
    ctx.save(ScheduledList((*kept, *new)))
    for c in changes:
        if c.power > 0:
            ctx.save(ValidatorOwner(c.public_key, c.org, names[c.public_key]))
    # last: nothing after it can fail, so what consensus is told is what state records
    updates = [ValidatorUpdate(c.public_key, c.power, names[c.public_key]) for c in changes]
    return schedule(ctx, updates)
