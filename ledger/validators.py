"""The validator set: who may vote, with what power, and who proposes when; and the
updates that change it on chain (:class:`ValidatorUpdate`, :func:`apply_updates`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ledger.crypto import PUBLIC_KEY_SIZE
from ledger.encoding import Value, digest
from ledger.errors import ValidationError
from ledger.schema import PUBLIC_KEY, Described, Int, List, Nested, Str, described, read, wire

MAX_TOTAL_POWER = 10_000
MAX_VALIDATORS = 200


@described("validator", convert=())
@dataclass(frozen=True, slots=True)
class Validator(Described):
    """One validator; ``from_obj`` refuses a malformed map with :class:`DecodeError` and
    a well-formed one that breaks a rule with :class:`ValidationError`."""

    name: str = field(metadata=wire(Str(max_len=64)))
    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    power: int = field(metadata=wire(Int(lo=1, hi=MAX_TOTAL_POWER)))

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValidationError(f"validator {self.name!r}: public key must be 32 bytes")
        if not 1 <= self.power <= MAX_TOTAL_POWER:
            raise ValidationError(f"validator {self.name!r}: power must be 1..{MAX_TOTAL_POWER}")
        if not 1 <= len(self.name) <= 64:
            raise ValidationError("validator name must be 1..64 characters")


@dataclass(frozen=True)
class ValidatorSet:
    """An ordered validator set. Hash-identified; order is the genesis order."""

    validators: tuple[Validator, ...]
    _by_key: dict[bytes, Validator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.validators) <= MAX_VALIDATORS:
            raise ValidationError(f"a validator set has 1..{MAX_VALIDATORS} validators")
        by_key = {v.public_key: v for v in self.validators}
        if len(by_key) != len(self.validators):
            raise ValidationError("a validator set lists the same key twice")
        if len({v.name for v in self.validators}) != len(self.validators):
            raise ValidationError("a validator set lists the same name twice")
        if self.total_power > MAX_TOTAL_POWER:
            raise ValidationError(f"total voting power is over {MAX_TOTAL_POWER}")
        object.__setattr__(self, "_by_key", by_key)

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def quorum_power(self) -> int:
        """Smallest power that is more than 2/3 of the total (the paper's 2f+1)."""
        return self.total_power * 2 // 3 + 1

    @property
    def skip_power(self) -> int:
        """Smallest power that is more than 1/3 of the total (the paper's f+1)."""
        return self.total_power // 3 + 1

    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._by_key

    def get(self, public_key: bytes) -> Validator | None:
        return self._by_key.get(public_key)

    def power_of(self, public_key: bytes) -> int:
        v = self._by_key.get(public_key)
        return v.power if v else 0

    def power_of_set(self, public_keys: set[bytes] | frozenset[bytes]) -> int:
        return sum(self.power_of(k) for k in public_keys)

    @cached_property
    def _schedule(self) -> tuple[bytes, ...]:
        """Smooth weighted round robin over one period of ``total_power`` slots.

        Each validator appears ``power`` times, spread out as evenly as possible
        (the nginx / Tendermint proposer-priority idea, made stateless so that
        the proposer of any (height, round) is a pure function).
        """
        current = [0] * len(self.validators)
        total = self.total_power
        order: list[bytes] = []
        for _ in range(total):
            for i, v in enumerate(self.validators):
                current[i] += v.power
            best = max(range(len(current)), key=lambda i: (current[i], -i))
            current[best] -= total
            order.append(self.validators[best].public_key)
        return tuple(order)

    def proposer(self, height: int, round_: int) -> bytes:
        """The proposer of (height, round): weighted round-robin rotation."""
        schedule = self._schedule
        return schedule[(height + round_) % len(schedule)]

    def to_obj(self) -> list[Value]:
        return [v.to_obj() for v in self.validators]

    @classmethod
    def from_obj(cls, obj: Value) -> ValidatorSet:
        """The set in ``obj`` (a list of validator maps), checked as the constructor does."""
        return cls(read(VALIDATOR_LIST, obj, "validators"))

    @cached_property
    def hash(self) -> bytes:
        return digest(self.to_obj())


VALIDATOR_LIST = List(Nested(Validator), max_len=MAX_VALIDATORS)
"""A validator set on the wire: its validators in order."""


@described("validator update", convert=())
@dataclass(frozen=True, slots=True)
class ValidatorUpdate(Described):
    """One change to the validator set: ``power`` 0 removes the validator with
    ``public_key``; any other power adds it (under ``name``) or sets its power (its name
    must stay the same). A key rotation is two updates in one list: the old key with
    power 0, then the new key with the same name and power. Applied in order by
    :func:`apply_updates`; the set they make is in force two heights after the block
    that scheduled them (docs/consensus.md, "Validator-set changes")."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    power: int = field(metadata=wire(Int(lo=0, hi=MAX_TOTAL_POWER)))
    name: str = field(metadata=wire(Str(max_len=64)))

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValidationError("validator update: public key must be 32 bytes")
        if not 0 <= self.power <= MAX_TOTAL_POWER:
            raise ValidationError(f"validator update: power must be 0..{MAX_TOTAL_POWER}")
        if not 1 <= len(self.name) <= 64:
            raise ValidationError("validator update: name must be 1..64 characters")


def apply_updates(current: ValidatorSet, updates: Sequence[ValidatorUpdate]) -> ValidatorSet:
    """The set ``updates`` make of ``current``, applied in order. Order of the result:
    the remaining validators in their old order, new ones appended in update order.
    Raises :class:`ValidationError` for an update that removes or re-names a validator
    the set does not hold that way, or a result that is not a valid set (empty, a name
    twice, total power over the bound)."""
    members: dict[bytes, Validator] = {v.public_key: v for v in current.validators}
    for update in updates:
        known = members.get(update.public_key)
        if update.power == 0:
            if known is None:
                raise ValidationError(
                    f"cannot remove {update.public_key.hex()[:16]}…: not a validator"
                )
            del members[update.public_key]
        elif known is not None and known.name != update.name:
            raise ValidationError(
                f"validator {known.name!r} cannot be renamed {update.name!r} (rotate the key)"
            )
        else:
            members[update.public_key] = Validator(update.name, update.public_key, update.power)
    if not members:
        raise ValidationError("the updates would leave no validator")
    return ValidatorSet(tuple(members.values()))
