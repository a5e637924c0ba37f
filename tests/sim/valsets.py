"""Validator-set changes in the simulator: a seeded schedule of updates and the set in
force at each height.

In the real node a block's execution schedules updates and the set they make is in
force two heights later; here the schedule is drawn with the scenario (as if block H
carried the updates), which is the same for the consensus core: every node learns the
sets of heights h+1 and h+2 when it commits h. Updates go through the product's
:func:`ledger.validators.apply_updates`. Every set in force keeps n >= 4 and byzantine
power below a third of its total (the BFT assumption holds for each set, not only the
first). Extra keys (``KEYS[n..]``) are honest nodes that follow as observers until a
change adds them; a removed validator, or the old key of a rotation, keeps running
with the last set it was in, so it keeps voting after the effective height, and
everyone must ignore it.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from ledger.errors import ValidationError
from ledger.validators import ValidatorSet, ValidatorUpdate, apply_updates
from tests.sim.fixtures import KEYS, MAX_VALIDATORS

KINDS = ("add", "remove", "power", "rotate")


@dataclass
class Schedule:
    """``changes``: (effective height, set) in height order, after the first set."""

    first: ValidatorSet
    changes: list[tuple[int, ValidatorSet]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)

    def at(self, height: int) -> ValidatorSet:
        """The set that votes on block ``height``."""
        i = bisect.bisect_right([h for h, _ in self.changes], height)
        return self.first if i == 0 else self.changes[i - 1][1]

    def removed_at(self, key: bytes) -> int | None:
        """The first height whose set no longer holds ``key`` (after it held it)."""
        held = key in self.first
        for height, vs in self.changes:
            if held and key not in vs:
                return height
            held = held or key in vs
        return None

    def keys(self) -> set[bytes]:
        out = {v.public_key for v in self.first.validators}
        for _, vs in self.changes:
            out.update(v.public_key for v in vs.validators)
        return out

    def describe(self) -> str:
        return "; ".join(self.described) or "none"


def draw(rng: random.Random, first: ValidatorSet, n: int, byzantine: set[bytes]) -> Schedule:
    """Up to four changes at random heights 1..8, each kept only if every set stays safe."""
    schedule = Schedule(first)
    spare = [k.public_key for k in KEYS[n:MAX_VALIDATORS]]
    current = first
    height = 0
    for _ in range(rng.choice([1, 2, 3, 4])):
        height += rng.randint(1, 3)
        kind = rng.choice(KINDS)
        updates = _updates(rng, kind, current, spare)
        if updates is None:
            continue
        try:
            new = apply_updates(current, updates)
        except ValidationError:
            continue
        if not _safe(new, byzantine):
            continue
        for u in updates:
            if u.power and u.public_key in spare:
                spare.remove(u.public_key)
        schedule.changes.append((height + 2, new))
        schedule.described.append(f"{kind} at h{height}: from h{height + 2} {_names(new)}")
        current = new
    return schedule


def _updates(
    rng: random.Random, kind: str, current: ValidatorSet, spare: list[bytes]
) -> list[ValidatorUpdate] | None:
    members = list(current.validators)
    victim = rng.choice(members)
    if kind == "add" and spare:
        return [ValidatorUpdate(spare[0], rng.randint(1, 2), f"x{len(spare)}")]
    if kind == "remove":
        return [ValidatorUpdate(victim.public_key, 0, victim.name)]
    if kind == "power":
        return [ValidatorUpdate(victim.public_key, rng.randint(1, 3), victim.name)]
    if kind == "rotate" and spare:
        return [
            ValidatorUpdate(victim.public_key, 0, victim.name),
            ValidatorUpdate(spare[0], victim.power, victim.name),
        ]
    return None


def _safe(vs: ValidatorSet, byzantine: set[bytes]) -> bool:
    return len(vs) >= 4 and 3 * vs.power_of_set(byzantine) < vs.total_power


def _names(vs: ValidatorSet) -> str:
    return "{" + ", ".join(f"{v.name}:{v.power}" for v in vs.validators) + "}"
