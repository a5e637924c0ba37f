"""The demo's shared vocabulary: times, counts, well-known ids, phases, and the plan.

A :class:`Plan` collects steps by phase and numbers each sender's nonces only when
it is built, so the scenario's parts (identity, permits, shipments, energy) can be
planned in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.tx import Transaction

DEFAULT_SEED = 20240501
DEFAULT_START_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
INTERVAL_MS = 15 * MINUTE
IMPORT_COUNT = 40
EXPORT_COUNT = 16
EXTRA_PERMITS = 17

# Fixed ids, whatever the seed (see demo_summary).
LONG_HISTORY = "SHP-0001"
HELD = "SHP-0002"
SEIZED = "SHP-0003"
RESTRICTED = "SHP-0004"
REUSE_SOURCE = "SHP-0012"
REUSE_EXPORT = "SHP-0057"
LONG_HISTORY_CONTAINERS = ["KOLU3054385", "KOLU4821579"]

# Phases (see module docstring). Shipment journeys start at P_DECLARE; the
# second-wave export re-uses a container delivered in an earlier phase.
P_IDENTITY, P_DECLARE, P_DOCS, P_SAIL, P_ARRIVE = 0, 1, 2, 3, 4
SECOND_WAVE = 8


def member_label(org_id: str, name: str) -> str:
    """The label a demo member's key is derived from (PrivateKey.from_label)."""
    return f"demo/{org_id}/{name}"


# --- the plan: steps by phase, nonces numbered at the end --------------------------------------

Payload = dict[str, Value] | Callable[[dict[int, Transaction]], dict[str, Value]]


@dataclass
class Plan:
    chain_id: str
    steps: list[tuple[int, int, str, str, Payload]] = field(default_factory=list)

    def add(self, phase: int, org: str, member: str, kind: str, payload: Payload) -> int:
        """Queue a step; returns a handle whose built transaction later steps may refer to."""
        handle = len(self.steps)
        self.steps.append((phase, handle, member_label(org, member), kind, payload))
        return handle

    def build(self) -> list[list[Transaction]]:
        nonces: dict[str, int] = {}
        keys: dict[str, PrivateKey] = {}
        built: dict[int, Transaction] = {}
        phases: list[list[Transaction]] = []
        for phase, handle, label, kind, payload in sorted(self.steps, key=lambda s: s[:2]):
            while len(phases) <= phase:
                phases.append([])
            key = keys.setdefault(label, PrivateKey.from_label(label))
            body = payload(built) if callable(payload) else payload
            tx = Transaction.create(key, self.chain_id, kind, nonces.get(label, 0), body)
            nonces[label] = tx.nonce + 1
            built[handle] = tx
            phases[phase].append(tx)
        return phases
