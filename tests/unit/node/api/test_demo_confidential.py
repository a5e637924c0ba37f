"""The demo scenario behind the API: an outsider learns no goods, values, parties,
meters, prices or quantities of it on any road.

The demo (57 shipments, 30 permits, a microgrid) is committed phase by phase to an
in-process node with the real executor and contracts. Its confidential transactions'
payload values — text and bytes, ids included, numbers as their msgpack encoding — are
the markers; each must reach an auditor and none an unsigned reader, on every block, every
receipt and every log leaf, in JSON and msgpack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cache
from string import hexdigits

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts.registry import tx_kinds
from devnet.demo import DEFAULT_START_MS, demo_genesis, demo_phases, demo_summary
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet
from node.api.app import make_app
from node.api.auth import sign_request
from node.config import APIConfig
from tests.unit.node.api.conftest import VALIDATORS, Client, Clock, TestNode

CHAIN_ID = "cityledger-demo"
PUBLIC_KINDS = ("permit.", "identity.")


@cache
def demo_node() -> TestNode:
    validators = ValidatorSet(
        tuple(Validator(f"validator-{i}", k.public_key, 1) for i, k in enumerate(VALIDATORS))
    )
    node = TestNode(demo_genesis(CHAIN_ID, validators=validators))
    for i, phase in enumerate(demo_phases(CHAIN_ID, start_time_ms=DEFAULT_START_MS)):
        block = node.commit(phase, DEFAULT_START_MS + i * 1_000)
        failed = [r for r in node.chain.receipts(block.height) if not r.ok]
        assert failed == [], failed[:3]
    return node


def committed(node: TestNode) -> Iterator[Transaction]:
    for h in range(1, node.chain.head().height + 1):
        block = node.chain.block(h)
        assert block is not None
        yield from block.txs


def leaves(value: Value) -> Iterator[str | bytes]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, str | bytes):
        yield value


def markers(node: TestNode) -> set[str | bytes]:
    """Values only confidential payloads carry (at least 6 characters or 16 bytes; none
    that a public transaction or the genesis also carries, e.g. organisation ids, and
    none that is public by construction: a transaction's hash, which an order id is, and
    words of transaction kinds, which a customs decision's is)."""
    secret: set[str | bytes] = set()
    public: set[str | bytes] = set(leaves(node.genesis.to_obj()))
    kinds = " ".join(tx_kinds())
    for tx in committed(node):
        values = set(leaves(tx.payload))
        (public if tx.kind.startswith(PUBLIC_KINDS) else secret).update(values)
        public.update({tx.hash, tx.hash.hex()})
    keep = {
        v
        for v in secret - public
        if len(v) >= (6 if isinstance(v, str) else 16)
        and not (isinstance(v, str) and v in kinds)
        and not (isinstance(v, str) and len(v) < 16 and all(c in hexdigits for c in v))
    }  # (a short string of hex digits, an HS code, turns up in any page of hashes by chance)
    assert len(keep) > 100  # goods, shipment ids, containers, meters, documents, references
    return keep


@pytest.fixture
async def demo_client() -> AsyncIterator[Client]:
    clock = Clock(DEFAULT_START_MS + 3_600_000)
    async with TestClient(TestServer(make_app(demo_node(), APIConfig(), clock=clock))) as c:
        yield c


def paths(node: TestNode) -> list[str]:
    head = node.chain.head()
    out = [f"/v1/blocks/{h}" for h in range(1, head.height + 1)]
    out += [f"/v1/txs/{tx.hash.hex()}" for tx in committed(node)]
    out += [f"/v1/log/inclusion/{i}" for i in range(0, head.log_size, 7)]
    return out


async def answers(client: Client, reader: PrivateKey | None) -> Iterator[bytes]:
    node = demo_node()
    bodies = []
    for path in paths(node):
        for accept in ("application/json", "application/msgpack"):
            headers = {"Accept": accept}
            if reader is not None:
                now = DEFAULT_START_MS + 3_600_000
                headers |= sign_request(reader, CHAIN_ID, node.public_key, "GET", path, b"", now)
            response = await client.get(path, headers=headers)
            assert response.status == 200, (path, response.status)
            bodies.append(await response.read())
    return iter(bodies)


def found(bodies: Iterator[bytes], marks: set[str | bytes]) -> set[str | bytes]:
    text = b"\n".join(bodies)
    out: set[str | bytes] = set()
    for m in marks:
        forms = [m.encode()] if isinstance(m, str) else [m, m.hex().encode()]
        if any(form in text for form in forms):
            out.add(m)
    return out


async def test_the_public_learns_nothing_confidential_of_the_demo(demo_client: Client) -> None:
    marks = markers(demo_node())
    leaked = found(await answers(demo_client, None), marks)
    assert sorted(map(str, leaked))[:10] == []


async def test_the_auditor_reads_the_whole_demo(demo_client: Client) -> None:
    auditor = PrivateKey.from_label(str(demo_summary()["auditor_label"]))
    marks = markers(demo_node())
    assert found(await answers(demo_client, auditor), marks) == marks
