"""The contracts' parameters, read from ``genesis.app`` with defaults.

``genesis.app`` is a free canonical map; the contracts read these keys:

``restricted_hs_codes``
    list of HS code prefixes (2..10 digits) whose customs clearance requires a
    valid import licence held by the consignee. Default: none.
``energy_interval_ms``
    length of an energy settlement interval. Default 900 000 (15 minutes).
    Interval starts must be multiples of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.codes import HS_PREFIX_PATTERN
from ledger.encoding import Value
from ledger.errors import ValidationError
from ledger.genesis import Genesis

DEFAULT_ENERGY_INTERVAL_MS = 15 * 60 * 1000


@dataclass(frozen=True, slots=True)
class AppParams:
    restricted_hs_codes: tuple[str, ...] = ()
    energy_interval_ms: int = DEFAULT_ENERGY_INTERVAL_MS

    def __post_init__(self) -> None:
        for prefix in self.restricted_hs_codes:
            if not isinstance(prefix, str) or not HS_PREFIX_PATTERN.match(prefix):
                raise ValidationError(
                    f"genesis app.restricted_hs_codes: {prefix!r} is not 2..10 digits"
                )
        interval = self.energy_interval_ms
        if not isinstance(interval, int) or isinstance(interval, bool):
            raise ValidationError("genesis app.energy_interval_ms must be an integer")
        if not 1000 <= interval <= 86_400_000:
            raise ValidationError("genesis app.energy_interval_ms must be 1 s .. 1 day")

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> AppParams:
        app = genesis.app
        restricted = app.get("restricted_hs_codes", [])
        if not isinstance(restricted, list | tuple):
            raise ValidationError("genesis app.restricted_hs_codes must be a list")
        return cls(
            restricted_hs_codes=tuple(sorted(set(restricted))),
            energy_interval_ms=app.get("energy_interval_ms", DEFAULT_ENERGY_INTERVAL_MS),
        )

    def to_obj(self) -> dict[str, Value]:
        return {
            "energy_interval_ms": self.energy_interval_ms,
            "restricted_hs_codes": list(self.restricted_hs_codes),
        }
