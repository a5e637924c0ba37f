"""The ceiling: Ed25519 verifications per second per core, measured on this machine.

Each validator must check each transaction's signature once, so no network of
``n`` validators sharing ``cores`` cores can commit more than
``verify_per_s_per_core * cores / n`` transactions per second, whatever else it
does. Measured with PyNaCl's ``crypto_sign_open`` (what :func:`ledger.crypto.verify`
calls) in this single process, over transaction-sized messages, before any node
starts. The ceiling uses the best round (the core's own speed); the median round is
kept too, as a sign of how much other load the machine carried.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import nacl.bindings

from ledger.crypto import PrivateKey, Purpose, signing_bytes


@dataclass(frozen=True, slots=True)
class Ceiling:
    verify_per_s_per_core: float  # best round: the core's own speed, shedding other load
    median_per_s: float  # median round: what this core gave while others ran too
    cores: int
    validators: int

    @property
    def tps(self) -> float:
        return self.verify_per_s_per_core * self.cores / self.validators

    def to_obj(self) -> dict[str, float | int]:
        return {
            "verify_per_s_per_core": round(self.verify_per_s_per_core),
            "verify_per_s_median": round(self.median_per_s),
            "cores": self.cores,
            "validators": self.validators,
            "ceiling_tps": round(self.tps),
        }


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def verify_rates(seconds: float = 2.0, message_bytes: int = 300) -> tuple[float, float]:
    """Verifications per second of one core: (best, median) over rounds of 500."""
    key = PrivateKey.from_label("bench/ceiling")
    message = signing_bytes(Purpose.TRANSACTION, "cityledger-bench", b"\x5a" * message_bytes)
    signed = key.sign(Purpose.TRANSACTION, "cityledger-bench", b"\x5a" * message_bytes) + message
    public = key.public_key
    rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or not rates:
        n = 500
        began = time.perf_counter()
        for _ in range(n):
            nacl.bindings.crypto_sign_open(signed, public)
        rates.append(n / (time.perf_counter() - began))
    return max(rates), statistics.median(rates)


def measure(validators: int, seconds: float = 2.0) -> Ceiling:
    best, median = verify_rates(seconds)
    return Ceiling(best, median, cores(), validators)
