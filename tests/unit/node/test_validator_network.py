"""Five real nodes in one process over loopback TLS, four of them validators: a change
adds the fifth (an observer until then) and removes v3. From the effective height on
the new key signs certificates and v3's never appears in one again, although its node
keeps running; every node agrees on the chain and on the set at each height."""

from __future__ import annotations

import asyncio

import pytest

from ledger.crypto import PrivateKey
from ledger.validators import ValidatorUpdate
from node.runtime import Node
from tests.unit.node.chainkit import ADMIN, CHAIN, VALIDATOR_KEYS, make_genesis, wait_for
from tests.unit.node.meshkit import mesh, running
from tests.unit.node.valset_kit import registered, updates_tx

GENESIS = make_genesis()
NEW = PrivateKey.from_label("node-test-validator-joining")


def _nodes(prelisted: bool) -> list[Node]:
    """``prelisted``: the validators list the joining key in ``[p2p] observers`` (so it
    follows the chain before the change); otherwise they let it link only once a
    committed change names it (node/membership.py), and it catches up then."""
    observers = [NEW.public_key.hex()] if prelisted else []
    return mesh(GENESIS, [*VALIDATOR_KEYS, NEW], prefix="n", observers=observers)


@pytest.mark.parametrize("prelisted", [True, False], ids=["observer-first", "unknown-first"])
def test_an_added_validator_starts_signing_and_a_removed_one_is_ignored(prelisted: bool) -> None:
    with registered():
        nodes = _nodes(prelisted)
        assert [node.is_validator for node in nodes] == [True] * 4 + [False]
        asyncio.run(_run(nodes, prelisted))


async def _run(nodes: list[Node], prelisted: bool) -> None:
    async with running(nodes):
        await _scenario(nodes, prelisted)


async def _scenario(nodes: list[Node], prelisted: bool) -> None:
    async def at(height: int, among: list[Node] = nodes) -> bool:
        return all(node.chain.head().height >= height for node in among)

    following = nodes if prelisted else nodes[:4]  # the unknown key cannot link yet
    await wait_for("block 1 everywhere", 60, lambda: at(1, following))
    assert prelisted or nodes[4].chain.head().height == 0
    change = updates_tx(
        ADMIN,
        CHAIN,
        0,
        ValidatorUpdate(NEW.public_key, 1, "v-new"),
        ValidatorUpdate(VALIDATOR_KEYS[3].public_key, 0, "v3"),
    )
    assert await nodes[0].submit([change]) == [None]
    chain = nodes[0].chain

    async def changed() -> bool:
        return bool(chain.validator_changes())

    await wait_for("the change to be committed", 60, changed)
    [(effective, new_set)] = chain.validator_changes()
    await wait_for("six blocks past the change", 90, lambda: at(effective + 6))
    assert nodes[4].is_validator and nodes[4].consensus_started
    head = min(node.chain.head().height for node in nodes)
    for node in nodes[1:]:
        assert node.chain.header(head) == chain.header(head)
        assert node.chain.validators_at(effective) == new_set
    new_signed = False
    for height in range(1, head + 1):
        cert = chain.certificate(height)
        assert cert is not None
        validators = chain.validators_at(height)
        assert cert.signers <= {v.public_key for v in validators.validators}
        if height >= effective:
            assert VALIDATOR_KEYS[3].public_key not in cert.signers
            new_signed |= NEW.public_key in cert.signers
        header = chain.header(height)
        assert header is not None and header.validators_hash == validators.hash
    assert new_signed, "the added validator never signed a certificate"
