"""Real nodes in one process, each linked to every other over loopback: the network
the in-process network tests run (evidence, validator-set changes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from devnet.processes import free_base_port
from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.storage import MemoryStore
from node.config import APIConfig, ConsensusConfig, MempoolConfig, NodeConfig, P2PConfig
from node.runtime import Node

STOP_WAIT_S = 30


def mesh(
    genesis: Genesis, keys: Sequence[PrivateKey], *, prefix: str, observers: Sequence[str] = ()
) -> list[Node]:
    """A node of each key (named ``prefix`` and its index) over a new memory store:
    p2p on a free base port + its index, its API 100 ports up, each dialling every
    other; ``observers`` (hex keys) go to every node's ``[p2p] observers``. Signatures
    are checked inline, and an idle network commits an empty block each 500 ms, so
    that the tests waiting for heights get them."""
    base = free_base_port(span=len(keys) + 4)
    p2p = [f"127.0.0.1:{base + i}" for i in range(len(keys))]
    return [
        Node(
            NodeConfig(
                name=f"{prefix}{i}",
                p2p=P2PConfig(
                    listen=p2p[i],
                    peers=[a for j, a in enumerate(p2p) if j != i],
                    observers=list(observers),
                ),
                api=APIConfig(listen=f"127.0.0.1:{base + 100 + i}"),
                mempool=MempoolConfig(signature_processes=0),
                consensus=ConsensusConfig(empty_block_interval_ms=500),
            ),
            genesis,
            key,
            MemoryStore(),
        )
        for i, key in enumerate(keys)
    ]


def api_url(node: Node) -> str:
    return f"http://{node.config.api.listen}"


@asynccontextmanager
async def running(nodes: Sequence[Node]) -> AsyncIterator[None]:
    """Run ``nodes`` for the block's length; then stop them all and wait (bounded)
    until each has closed its links and API."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(node.run(stop)) for node in nodes]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), STOP_WAIT_S)
