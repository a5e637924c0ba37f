"""A node as the background loops see it (node/background.py ``Duties``), idle: no peers,
height 1, nothing pending, consensus not started — for tests of what a loop does each
second."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from node.config import NodeConfig


def _ignore(seconds: float) -> None:
    pass


def idle_node(
    config: NodeConfig,
    heap_trimmed: Callable[[float], object] = _ignore,
) -> SimpleNamespace:
    """``config``'s node, with no store of its own; ``heap_trimmed`` receives what the
    metrics would count."""
    return SimpleNamespace(
        config=config,
        store=None,
        peers=SimpleNamespace(broadcast=lambda msg: None, peers={}),
        chain=SimpleNamespace(head=lambda: SimpleNamespace(height=1)),
        mempool=SimpleNamespace(expire=lambda now: False),
        consensus_started=False,
        syncer=SimpleNamespace(maybe_request=lambda: None),
        metrics=SimpleNamespace(set_peers=lambda n: None, heap_trimmed=heap_trimmed),
    )
