"""The validator set: who may vote, with what power, and who proposes when."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ledger.crypto import PUBLIC_KEY_SIZE
from ledger.encoding import Value, digest, expect_bytes, expect_int, expect_list, expect_map
from ledger.encoding import expect_str as _expect_str
from ledger.errors import ValidationError

MAX_TOTAL_POWER = 10_000
MAX_VALIDATORS = 200


@dataclass(frozen=True, slots=True)
class Validator:
    name: str
    public_key: bytes
    power: int

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValidationError(f"validator {self.name!r}: public key must be 32 bytes")
        if not 1 <= self.power <= MAX_TOTAL_POWER:
            raise ValidationError(f"validator {self.name!r}: power must be 1..{MAX_TOTAL_POWER}")
        if not 1 <= len(self.name) <= 64:
            raise ValidationError("validator name must be 1..64 characters")

    def to_obj(self) -> dict[str, Value]:
        return {"name": self.name, "public_key": self.public_key, "power": self.power}

    @classmethod
    def from_obj(cls, obj: Value) -> Validator:
        m = expect_map(obj, "validator", ("name", "public_key", "power"))
        return cls(
            name=_expect_str(m["name"], "validator.name", max_len=64),
            public_key=expect_bytes(m["public_key"], "validator.public_key", size=32),
            power=expect_int(m["power"], "validator.power", lo=1, hi=MAX_TOTAL_POWER),
        )


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
        items = expect_list(obj, "validators", max_len=MAX_VALIDATORS)
        return cls(tuple(Validator.from_obj(v) for v in items))

    @cached_property
    def hash(self) -> bytes:
        return digest(self.to_obj())
