"""Energy payloads: the described form of each ``energy.*`` transaction.

Amounts are bounded here (Wh per reading or order, price per kWh, money per
credit) and an order must be worth at least one minor unit. A reading's meter
signature is checked by the handler, against the chain id. Parsing is stateless,
so the mempool runs it once at admission; the handlers that apply a parsed
payload to state are in :mod:`contracts.energy`.
"""

from __future__ import annotations

import re
from dataclasses import field

from contracts.errors import bad_payload
from contracts.fields import AMOUNT, ORG_ID, optional, payload, text
from ledger.schema import PUBLIC_KEY, SIGNATURE, Choice, Described, Int, Str, wire

MAX_WH = 10**12
MAX_PRICE_PER_KWH = 10**9
MAX_CREDIT = 10**15
MIN_ORDER_VALUE = 1000  # quantity_wh * price_per_kwh: an order is worth at least 1 minor unit
ORDER_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SIDES = frozenset({"offer", "bid"})
WH = Int(hi=MAX_WH)


@payload("energy.register_meter")
class RegisterMeter(Described):
    """The regulator registers a meter key to a prosumer organisation."""

    meter_key: bytes = field(metadata=wire(PUBLIC_KEY))
    owner: str = field(metadata=wire(ORG_ID))
    name: str = field(metadata=wire(text(100)))
    active_from_ms: int | None = optional(AMOUNT, None)


@payload("energy.revoke_meter")
class RevokeMeter(Described):
    """The regulator revokes a meter; its readings are refused afterwards."""

    meter_key: bytes = field(metadata=wire(PUBLIC_KEY))
    reason: str = field(metadata=wire(text()))


@payload("energy.submit_reading")
class Reading(Described):
    """The meter owner submits a reading signed by the meter; production mints credits."""

    meter_key: bytes = field(metadata=wire(PUBLIC_KEY))
    interval_start_ms: int = field(metadata=wire(AMOUNT))
    produced_wh: int = field(metadata=wire(WH))
    consumed_wh: int = field(metadata=wire(WH))
    signature: bytes = field(metadata=wire(SIGNATURE))


@payload("energy.credit_balance")
class CreditBalance(Described):
    """The regulator credits a prosumer's prepaid money balance (minor units)."""

    account: str = field(metadata=wire(ORG_ID))
    amount: int = field(metadata=wire(Int(lo=1, hi=MAX_CREDIT)))
    reference: str = field(metadata=wire(text()))


@payload("energy.place_order")
class PlaceOrder(Described):
    """A prosumer offers or bids for an interval; the Wh or money is reserved."""

    interval_start_ms: int = field(metadata=wire(AMOUNT))
    side: str = field(metadata=wire(Choice(SIDES)))
    quantity_wh: int = field(metadata=wire(Int(lo=1, hi=MAX_WH)))
    price_per_kwh: int = field(metadata=wire(Int(lo=1, hi=MAX_PRICE_PER_KWH)))

    def __post_init__(self) -> None:
        if self.quantity_wh * self.price_per_kwh < MIN_ORDER_VALUE:
            raise bad_payload(
                "energy.place_order: quantity_wh * price_per_kwh must be at least "
                f"{MIN_ORDER_VALUE} (an order is worth at least one minor unit)"
            )


@payload("energy.cancel_order")
class CancelOrder(Described):
    """A member of the ordering prosumer cancels an open order; its reservation is released."""

    order_id: str = field(metadata=wire(Str(max_len=64, pattern=ORDER_ID_PATTERN, control=False)))


@payload("energy.settle")
class Settle(Described):
    """Once an interval has ended, anyone in the market settles it (once): auction + transfers."""

    interval_start_ms: int = field(metadata=wire(AMOUNT))
