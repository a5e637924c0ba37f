"""Transaction payloads the devnet demo and the benchmark population build alike."""

from __future__ import annotations

from ledger.encoding import Value


def goods_line(
    hs_code: str, description: str, unit: str, unit_value: int, quantity: int, currency: str
) -> dict[str, Value]:
    """One line of a shipment declaration's goods: ``quantity`` units worth ``unit_value`` each."""
    return {
        "hs_code": hs_code,
        "description": description,
        "quantity": quantity,
        "unit": unit,
        "value": quantity * unit_value,
        "currency": currency,
    }


def order_payload(start_ms: int, side: str, quantity: int, price: int) -> dict[str, Value]:
    """An ``energy.place_order`` payload: ``quantity`` Wh at ``price`` per kWh."""
    return {
        "interval_start_ms": start_ms,
        "side": side,
        "quantity_wh": quantity,
        "price_per_kwh": price,
    }
