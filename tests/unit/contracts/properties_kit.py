"""Shared by the contract property tests: example counts and the per-block checks.

Every block a property test executes goes through :func:`run_block`, which checks on
copies of the state that a second execution is identical (determinism) and that one
transaction at a time gives the same state, each refused one changing nothing but its
nonce (failure isolation). Example counts are modest in ``make test``; ``make properties
EXAMPLES=N`` runs each test with N (``CITYLEDGER_PROPERTY_EXAMPLES``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from contracts import state_keys as sk
from contracts.engine import execute_block
from ledger.block import Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.state import StateTree
from ledger.storage import MemoryStore, WriteBatch
from ledger.tx import Transaction

from .harness import Chain, DictState

DAY = 86_400_000
F = TypeVar("F", bound=Callable[..., Any])


def examples(default: int) -> Callable[[F], F]:
    """``settings`` with ``default`` examples, or ``CITYLEDGER_PROPERTY_EXAMPLES`` if set."""
    count = int(os.environ.get("CITYLEDGER_PROPERTY_EXAMPLES") or default)
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- every block: determinism and failure isolation -------------------------------------------


def state_root(data: dict[bytes, bytes]) -> bytes:
    return StateTree(MemoryStore()).apply(dict(data), WriteBatch(), height=1)


def run_block(chain: Chain, txs: list[Transaction], time_ms: int) -> list[Receipt]:
    """Execute ``txs`` as the chain's next block, after checking on copies of the state that
    a second execution is identical (same receipts, changes and state root) and that one
    transaction at a time gives the same state, each refusal changing only its nonce."""
    height = chain.height + 1
    before = dict(chain.state.data)
    first = execute_block(DictState(before), chain.index, chain.genesis, height, time_ms, txs)
    again = execute_block(DictState(before), chain.index, chain.genesis, height, time_ms, txs)
    assert [r.encode() for r in first.receipts] == [r.encode() for r in again.receipts]
    assert first.state_changes == again.state_changes
    assert first.index_changes == again.index_changes
    one, two = DictState(before), DictState(before)
    one.apply(first.state_changes)
    two.apply(again.state_changes)
    assert state_root(one.data) == state_root(two.data)
    # one at a time
    alone = DictState(before)
    for tx, receipt in zip(txs, first.receipts, strict=True):
        out = execute_block(alone, chain.index, chain.genesis, height, time_ms, [tx])
        assert out.receipts[0].code == receipt.code
        if not receipt.ok:
            assert set(out.state_changes) <= {sk.nonce_key(tx.sender)}, (tx.kind, receipt.code)
            assert out.index_changes == {} and out.receipts[0].events == ()
        alone.apply(out.state_changes)
    assert alone.data == one.data
    outcome = chain.block(txs, time_ms)
    assert outcome.state_changes == first.state_changes
    return outcome.receipts


def send(
    chain: Chain, signer: PrivateKey, kind: str, payload: dict[str, Value], time_ms: int
) -> Receipt:
    """One transaction as the next block, through the determinism and isolation checks."""
    return run_block(chain, [chain.tx(signer, kind, payload)], time_ms)[0]
