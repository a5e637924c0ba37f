"""The demo's microgrid: meters with signed readings, order books, settled intervals."""

from __future__ import annotations

import random

from contracts.energy import sign_reading
from devnet import demo_data as data
from devnet.demo_plan import (
    DAY,
    HOUR,
    INTERVAL_MS,
    P_ARRIVE,
    P_DECLARE,
    P_DOCS,
    P_IDENTITY,
    P_SAIL,
    Plan,
)
from devnet.payloads import order_payload
from ledger.crypto import PrivateKey


def energy_intervals(start_time_ms: int) -> dict[str, list[int]]:
    """Interval starts used by the demo: settled markets and one open market, and the
    intervals with readings (the same: energy is sold in the interval it was produced).

    Two days before the start, around noon in Korea (03:00 UTC).
    """
    day = _commissioned(start_time_ms)
    settled = [day + 3 * HOUR + k * INTERVAL_MS for k in range(3)]
    open_ = [day + 4 * HOUR]
    return {"readings": settled + open_, "settled": settled, "open": open_}


def _commissioned(start_time_ms: int) -> int:
    """When the demo's meters went into service: midnight UTC two days before the start."""
    return start_time_ms - start_time_ms % DAY - 2 * DAY


def _meters() -> list[tuple[str, PrivateKey, int]]:
    out = []
    for org, (count, typical) in data.PROSUMER_METERS.items():
        for k in range(count):
            out.append((org, PrivateKey.from_label(f"demo/meter/{org}/{k}"), typical))
    return out


def plan_energy(plan: Plan, rng: random.Random, start: int) -> None:
    intervals = energy_intervals(start)
    regulator = ("sejong-energy", "regulator")
    for org, meter, _typical in _meters():
        plan.add(
            P_IDENTITY,
            *regulator,
            "energy.register_meter",
            {
                "meter_key": meter.public_key,
                "owner": org,
                "name": f"{org} meter",
                "active_from_ms": _commissioned(start),
            },
        )
    for org in data.PROSUMER_METERS:
        amount = 200_000 if org in data.BUYERS else 20_000
        plan.add(
            P_IDENTITY,
            *regulator,
            "energy.credit_balance",
            {"account": org, "amount": amount, "reference": f"prepayment {org}"},
        )
    # net production per (org, interval): what the org may sell in that interval
    net: dict[tuple[str, int], int] = {}
    for org, meter, typical in _meters():
        for start_ms in intervals["readings"]:
            produced = typical * rng.randint(70, 130) // 100
            consumed = rng.randint(100, 900) if org in data.BUYERS else rng.randint(50, 400)
            net[org, start_ms] = net.get((org, start_ms), 0) + produced - consumed
            plan.add(
                P_DECLARE,
                org,
                "owner",
                "energy.submit_reading",
                {
                    "meter_key": meter.public_key,
                    "interval_start_ms": start_ms,
                    "produced_wh": produced,
                    "consumed_wh": consumed,
                    "signature": sign_reading(meter, plan.chain_id, start_ms, produced, consumed),
                },
            )
    _plan_orders(plan, rng, intervals, net)


def _plan_orders(
    plan: Plan, rng: random.Random, intervals: dict[str, list[int]], net: dict[tuple[str, int], int]
) -> None:
    handles: list[int] = []
    for start_ms in intervals["settled"] + intervals["open"]:
        for org in data.SELLERS:
            # a share of the interval's own surplus (never more than it produced and did not use)
            quantity = max(0, net[org, start_ms]) * rng.randint(30, 60) // 100
            price = rng.randint(110, 170)
            if quantity * price < 1000:
                continue
            plan.add(
                P_DOCS,
                org,
                "owner",
                "energy.place_order",
                order_payload(start_ms, "offer", quantity, price),
            )
        for org in data.BUYERS:
            quantity, price = rng.randint(500, 4000), rng.randint(120, 200)
            handles.append(
                plan.add(
                    P_DOCS,
                    org,
                    "owner",
                    "energy.place_order",
                    order_payload(start_ms, "bid", quantity, price),
                )
            )
    cancelled = handles[len(data.BUYERS) + 1]  # second interval, second buyer
    plan.add(
        P_SAIL,
        data.BUYERS[1],
        "owner",
        "energy.cancel_order",
        lambda built: {"order_id": built[cancelled].hash.hex()},
    )
    settled = intervals["settled"]
    plan.add(
        P_ARRIVE, "sejong-energy", "regulator", "energy.settle", {"interval_start_ms": settled[0]}
    )
    plan.add(
        P_ARRIVE, "sejong-energy", "regulator", "energy.settle", {"interval_start_ms": settled[1]}
    )
    plan.add(P_ARRIVE, data.BUYERS[0], "owner", "energy.settle", {"interval_start_ms": settled[2]})
    replaced = PrivateKey.from_label(f"demo/meter/{data.BUYERS[2]}/0")
    plan.add(
        P_ARRIVE,
        "sejong-energy",
        "regulator",
        "energy.revoke_meter",
        {"meter_key": replaced.public_key, "reason": "replaced by a smart meter"},
    )
