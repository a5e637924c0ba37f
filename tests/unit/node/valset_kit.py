"""A test-only transaction kind that schedules validator updates (the product has none:
governance will call ``TxContext.schedule_validator_updates``). Registered in the
contracts' registry only inside :func:`registered`, so every in-process node sees it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from contracts.context import Handler, TxContext
from contracts.registry import HANDLERS
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.tx import Transaction
from ledger.validators import ValidatorSet, ValidatorUpdate

KIND = "test.validator_updates"
SEEN: list[tuple[int, ValidatorSet, int | None]] = []  # height, ctx.validators, signed
WATCHED: list[bytes] = []  # the key whose last_signed_height SEEN records


def _parse(value: Value) -> tuple[ValidatorUpdate, ...]:
    assert isinstance(value, dict) and isinstance(value["updates"], list)
    return tuple(ValidatorUpdate.from_obj(u) for u in value["updates"])


def _apply(ctx: TxContext, updates: tuple[ValidatorUpdate, ...]) -> None:
    signed = ctx.last_signed_height(WATCHED[0]) if WATCHED else None
    SEEN.append((ctx.height, ctx.validators, signed))
    ctx.schedule_validator_updates(updates)


@contextmanager
def registered(watched: bytes | None = None) -> Iterator[None]:
    HANDLERS[KIND] = Handler(KIND, frozenset({"admin"}), _parse, _apply, "test only")
    SEEN.clear()
    WATCHED[:] = [] if watched is None else [watched]
    try:
        yield
    finally:
        del HANDLERS[KIND]


def updates_tx(admin: PrivateKey, chain: str, nonce: int, *updates: ValidatorUpdate) -> Transaction:
    payload: Value = {"updates": [u.to_obj() for u in updates]}
    return Transaction.create(admin, chain, KIND, nonce, payload)
