"""A small in-memory chain for contract tests.

State is a dict-backed :class:`~contracts.context.StateReader`, the index a
:class:`~ledger.storage.MemoryStore`; each block's :class:`BlockOutcome` is
applied between blocks exactly as the node would (deletes included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts import queries
from contracts import state_keys as sk
from contracts.engine import BlockOutcome, execute_block, genesis_state, next_nonce
from ledger.block import Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.genesis import Genesis
from ledger.storage import MemoryStore, WriteBatch
from ledger.tx import Transaction
from tests.unit.genesis_kit import genesis_from_table, spaced_title
from tests.unit.ledger.changes_kit import apply_changes, write_changes

CHAIN_ID = "test-chain"
GENESIS_TIME = 1_700_000_000_000  # 2023-11-14T22:13:20Z
INTERVAL = 900_000
RESTRICTED = ["9302", "360100"]  # revolvers and pistols; propellent powders


def goods_line(**over: Value) -> dict[str, Value]:
    """A goods line of a declaration: one unit of HS 850760 worth 1 USD, with ``over``."""
    line: dict[str, Value] = {
        "hs_code": "850760",
        "description": "x",
        "quantity": 1,
        "unit": "C62",
        "value": 1,
        "currency": "USD",
    }
    return line | over


def new_org(
    org_id: str, name: str, kind: str, admin: PrivateKey, member: str, roles: Sequence[str]
) -> dict[str, Value]:
    """An ``identity.register_org`` payload: organisation ``org_id`` in Busan whose one
    member, ``member``, is ``admin``'s key with ``roles``."""
    first = {"public_key": admin.public_key, "name": member, "roles": list(roles)}
    return {"id": org_id, "name": name, "kind": kind, "city": "Busan", "members": [first]}


def as_obj(value: Any) -> Any:
    """A typed query answer as the stored maps it reads (records, lists, views; None)."""
    if isinstance(value, list | tuple):
        return [as_obj(item) for item in value]
    if hasattr(value, "to_obj"):
        return value.to_obj()
    if dataclasses.is_dataclass(value):
        return {f.name: as_obj(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def permit_at(state: Any, permit_id: str, at_ms: int) -> dict[str, Value] | None:
    """The stored permit plus its ``effective_status`` and ``blds_status`` at ``at_ms``."""
    from contracts.permits import BLDS_STATUS, effective_status

    permit = queries.get_permit(state, permit_id)
    if permit is None:
        return None
    status = effective_status(permit, at_ms)
    return {**permit.to_obj(), "effective_status": status, "blds_status": BLDS_STATUS[status]}


class DictState:
    """Committed state as a plain dict."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def apply(self, changes: dict[bytes, bytes | None]) -> None:
        apply_changes(self.data, changes.items())


def key(label: str) -> PrivateKey:
    return PrivateKey.from_label(f"contracts-test/{label}")


# org id -> (kind, {member name: roles})
WORLD: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "customs": ("agency", {"admin": ("admin",), "officer": ("customs",)}),
    "port": ("agency", {"admin": ("admin",), "officer": ("port",)}),
    "permits": (
        "agency",
        {"admin": ("admin",), "clerk": ("permit_office",), "insp": ("inspector",)},
    ),
    "energy": ("agency", {"admin": ("admin",), "regulator": ("energy_regulator",)}),
    "audit": ("agency", {"auditor": ("auditor",)}),
    "carrier-a": ("carrier", {"admin": ("admin",), "ops": ("carrier",)}),
    "carrier-b": ("carrier", {"admin": ("admin",), "ops": ("carrier",)}),
    "exporter": ("trader", {"admin": ("admin",), "clerk": ("trader",)}),
    "importer": ("trader", {"admin": ("admin",), "clerk": ("trader",)}),
    "broker": ("customs_broker", {"admin": ("admin",), "clerk": ("trader",)}),
    "solar-1": ("prosumer", {"admin": ("admin",), "owner": ("prosumer",)}),
    "solar-2": ("prosumer", {"admin": ("admin",), "owner": ("prosumer",)}),
    "solar-3": ("prosumer", {"admin": ("admin",), "owner": ("prosumer",)}),
}


def member_key(org: str, name: str) -> PrivateKey:
    return key(f"{org}/{name}")


def make_genesis(app: dict[str, Value] | None = None) -> Genesis:
    default_app: dict[str, Value] = {
        "restricted_hs_codes": RESTRICTED,
        "energy_interval_ms": INTERVAL,
    }
    return genesis_from_table(
        CHAIN_ID,
        GENESIS_TIME,
        [("v0", key("validator-0"))],
        {org_id: (kind, members.items()) for org_id, (kind, members) in WORLD.items()},
        member_key=member_key,
        city="Busan",
        org_name=spaced_title,
        app=default_app if app is None else app,
    )


@dataclass
class Chain:
    genesis: Genesis = field(default_factory=make_genesis)
    state: DictState = field(init=False)
    index: MemoryStore = field(default_factory=MemoryStore)
    height: int = 0
    time_ms: int = GENESIS_TIME
    outcomes: list[BlockOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = DictState(genesis_state(self.genesis))

    # --- building transactions ---------------------------------------------------------------

    def tx(
        self, signer: PrivateKey, kind: str, payload: dict[str, Value], nonce: int | None = None
    ) -> Transaction:
        if nonce is None:
            nonce = next_nonce(self.state, signer.public_key)
        return Transaction.create(signer, self.genesis.chain_id, kind, nonce, payload)

    def batch(self, items: Iterable[tuple[PrivateKey, str, dict[str, Value]]]) -> list[Transaction]:
        """Transactions with consecutive nonces per sender, starting at the committed nonce."""
        pending: dict[bytes, int] = {}
        out = []
        for signer, kind, payload in items:
            pk = signer.public_key
            nonce = pending.get(pk, next_nonce(self.state, pk))
            pending[pk] = nonce + 1
            out.append(Transaction.create(signer, self.genesis.chain_id, kind, nonce, payload))
        return out

    # --- executing blocks --------------------------------------------------------------------

    def block(self, txs: Sequence[Transaction], time_ms: int | None = None) -> BlockOutcome:
        self.height += 1
        self.time_ms = self.time_ms + 1000 if time_ms is None else time_ms
        outcome = execute_block(
            self.state, self.index, self.genesis, self.height, self.time_ms, txs
        )
        self.state.apply(outcome.state_changes)
        batch = WriteBatch()
        write_changes(batch, outcome.index_changes.items())
        self.index.write(batch)
        self.outcomes.append(outcome)
        return outcome

    def send(
        self,
        signer: PrivateKey,
        kind: str,
        payload: dict[str, Value],
        *,
        time_ms: int | None = None,
    ) -> Receipt:
        return self.block([self.tx(signer, kind, payload)], time_ms).receipts[0]

    def ok(
        self,
        signer: PrivateKey,
        kind: str,
        payload: dict[str, Value],
        *,
        time_ms: int | None = None,
    ) -> Receipt:
        receipt = self.send(signer, kind, payload, time_ms=time_ms)
        assert receipt.ok, f"{kind} refused: {receipt.code}: {receipt.message}"
        return receipt

    def fails(
        self,
        code: str,
        signer: PrivateKey,
        kind: str,
        payload: dict[str, Value],
        *,
        time_ms: int | None = None,
    ) -> Receipt:
        """Send, expect refusal with ``code``, and check nothing but the nonce changed."""
        before = dict(self.state.data)
        index_before = list(self.index.iterate(b""))
        receipt = self.send(signer, kind, payload, time_ms=time_ms)
        assert receipt.code == code, f"expected {code}, got {receipt.code!r}: {receipt.message}"
        assert receipt.events == ()
        changed = {
            k for k in set(before) | set(self.state.data) if before.get(k) != self.state.get(k)
        }
        assert changed <= {sk.nonce_key(signer.public_key)}, changed
        assert list(self.index.iterate(b"")) == index_before
        return receipt

    def index_keys(self, prefix: bytes) -> list[bytes]:
        return [k for k, _ in self.index.iterate(prefix)]


def event_types(receipt: Receipt) -> list[str]:
    return [e.type for e in receipt.events]
