"""The rails a validator-set change must pass: pure functions over plain inputs.

Networks break at governance (a Besu network halted when a validator whose node
was not running was voted in). So every change to the validator set is judged
on the set it would *leave*, and refused with one code per rail:

``rail_min_validators``
    fewer than ``min_validators`` validators would remain (a change that grows
    a set still below the minimum is allowed: it is the way out of it).
``rail_org_power``
    one organisation would hold at least 1/3 of the power, so that its outage
    alone could stop the chain (a change that strictly lowers the largest share
    of a set already over the line is allowed, for the same reason).
``rail_liveness``
    at most 2/3 of the power would sit with validators that signed within the
    last ``window`` heights: consensus needs more than 2/3, so such a set might
    not commit another block. A validator that never signed counts as down.
``rail_unsigned_pending``
    more than one validator that has not yet signed a block would be in the
    set: one node that never comes up is absorbed, two might not be.

The inputs are the set in force (with changes already scheduled applied, see
:mod:`contracts.governance_validators`), the updates, each key's last signed
height (``None``: never), the current height, the window and the minimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Seat:
    """One validator of a set as the rails see it: key, power, owning organisation."""

    public_key: bytes
    power: int
    org: str


@dataclass(frozen=True, slots=True)
class Change:
    """One update: ``power`` 0 removes the key; ``org`` names the owner of a new key."""

    public_key: bytes
    power: int
    org: str


def apply_changes(current: Sequence[Seat], changes: Sequence[Change]) -> list[Seat]:
    """The set after ``changes``, in order: existing keys keep their place, new ones append."""
    seats = {s.public_key: s for s in current}
    for c in changes:
        if c.power == 0:
            seats.pop(c.public_key, None)
        elif c.public_key in seats:
            seats[c.public_key] = Seat(c.public_key, c.power, seats[c.public_key].org)
        else:
            seats[c.public_key] = Seat(c.public_key, c.power, c.org)
    return list(seats.values())


def largest_share(seats: Sequence[Seat]) -> tuple[int, int]:
    """(power of the strongest organisation, total power)."""
    by_org: dict[str, int] = {}
    for s in seats:
        by_org[s.org] = by_org.get(s.org, 0) + s.power
    return max(by_org.values(), default=0), sum(by_org.values())


def is_live(last_signed: int | None, height: int, window: int) -> bool:
    """Whether a validator that last signed at ``last_signed`` counts as running."""
    return last_signed is not None and last_signed >= height - window


def check_rails(
    current: Sequence[Seat],
    changes: Sequence[Change],
    last_signed: Mapping[bytes, int | None],
    height: int,
    window: int,
    min_validators: int,
) -> str | None:
    """The code of the first rail the change breaks, or ``None`` when it passes them all."""
    after = apply_changes(current, changes)
    if len(after) < min_validators and len(after) <= len(current):
        return "rail_min_validators"
    top, total = largest_share(after)
    if total == 0:
        return "rail_min_validators"
    if 3 * top >= total:
        top_before, total_before = largest_share(current)
        if total_before == 0 or top * total_before >= top_before * total:
            return "rail_org_power"
    live = sum(s.power for s in after if is_live(last_signed.get(s.public_key), height, window))
    if 3 * live <= 2 * total:
        return "rail_liveness"
    never = sum(1 for s in after if last_signed.get(s.public_key) is None)
    if never > 1:
        return "rail_unsigned_pending"
    return None
