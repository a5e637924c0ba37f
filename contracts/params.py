"""The contracts' parameters, read from ``genesis.app`` with defaults.

``genesis.app`` is a free canonical map; the contracts read these keys:

``restricted_hs_codes``
    list of HS code prefixes (2..10 digits) whose customs clearance requires a
    valid import licence held by the consignee. Default: none.
``energy_interval_ms``
    length of an energy settlement interval. Default 900 000 (15 minutes).
    Interval starts must be multiples of it.
``max_meter_power_w``
    the most a meter may report per interval, as a power: a reading's
    ``produced_wh`` and ``consumed_wh`` are each at most
    ``max_meter_power_w * energy_interval_ms / 3 600 000`` Wh. Default 1 000 000
    (1 MW: 250 kWh per 15 minutes).
``max_reading_age_ms``
    how long after its start an interval may still be reported on by a meter.
    Default 7 days.
``settlement_delay_ms``
    how long after an interval has ended its market may be settled (the gate
    for late readings and offers). Default 900 000 (15 minutes).
``max_event_age_ms``
    how far before the block time a business event time (shipment provenance,
    customs decision, inspection) may lie. Default 90 days.

Genesis writes them to state at ``params``; from then on the state is the
source (a ``params-set`` governance proposal changes them there, effective from
the next block): the engine reads them at the start of each block
(:meth:`AppParams.from_stored`). The governance parameters are separate
(:mod:`contracts.governance_params`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

from contracts.codes import HS_PREFIX_PATTERN
from ledger.encoding import Value, decode
from ledger.errors import ValidationError
from ledger.genesis import Genesis

DAY_MS = 86_400_000
MAX_SKEW_MS = 5 * 60 * 1000  # a stated time may run this far ahead of the block time
DEFAULT_ENERGY_INTERVAL_MS = 15 * 60 * 1000
DEFAULT_MAX_METER_POWER_W = 1_000_000
DEFAULT_MAX_READING_AGE_MS = 7 * DAY_MS
DEFAULT_SETTLEMENT_DELAY_MS = 15 * 60 * 1000
DEFAULT_MAX_EVENT_AGE_MS = 90 * DAY_MS

# integer parameter -> (lowest, highest) allowed value
INT_RANGES: dict[str, tuple[int, int]] = {
    "energy_interval_ms": (1000, DAY_MS),
    "max_meter_power_w": (1, 10**9),
    "max_reading_age_ms": (1000, 366 * DAY_MS),
    "settlement_delay_ms": (0, 7 * DAY_MS),
    "max_event_age_ms": (60_000, 3660 * DAY_MS),
}


@dataclass(frozen=True, slots=True)
class AppParams:
    restricted_hs_codes: tuple[str, ...] = ()
    energy_interval_ms: int = DEFAULT_ENERGY_INTERVAL_MS
    max_meter_power_w: int = DEFAULT_MAX_METER_POWER_W
    max_reading_age_ms: int = DEFAULT_MAX_READING_AGE_MS
    settlement_delay_ms: int = DEFAULT_SETTLEMENT_DELAY_MS
    max_event_age_ms: int = DEFAULT_MAX_EVENT_AGE_MS

    def __post_init__(self) -> None:
        for prefix in self.restricted_hs_codes:
            if not isinstance(prefix, str) or not HS_PREFIX_PATTERN.match(prefix):
                raise ValidationError(
                    f"genesis app.restricted_hs_codes: {prefix!r} is not 2..10 digits"
                )
        for name, (lo, hi) in INT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(f"genesis app.{name} must be an integer")
            if not lo <= value <= hi:
                raise ValidationError(f"genesis app.{name} must be {lo} .. {hi}")

    @property
    def max_meter_wh(self) -> int:
        """The most Wh one meter may report produced (or consumed) in one interval."""
        return self.max_meter_power_w * self.energy_interval_ms // 3_600_000

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> AppParams:
        app = genesis.app
        restricted = app.get("restricted_hs_codes", [])
        if not isinstance(restricted, list | tuple):
            raise ValidationError("genesis app.restricted_hs_codes must be a list")
        defaults = cls()
        values = {name: app.get(name, getattr(defaults, name)) for name in INT_RANGES}
        return cls(restricted_hs_codes=tuple(sorted(set(restricted))), **values)

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def from_stored(raw: bytes) -> AppParams:
        """The parameters stored at ``params`` (a pure function of the bytes, kept)."""
        obj = decode(raw)
        if not isinstance(obj, dict) or set(obj) != {f.name for f in fields(AppParams)}:
            raise ValidationError("the stored parameters are not a parameter map")
        restricted = obj.pop("restricted_hs_codes")
        if not isinstance(restricted, list):
            raise ValidationError("stored restricted_hs_codes must be a list")
        return AppParams(restricted_hs_codes=tuple(restricted), **obj)

    def to_obj(self) -> dict[str, Value]:
        out: dict[str, Value] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["restricted_hs_codes"] = list(self.restricted_hs_codes)
        return dict(sorted(out.items()))
