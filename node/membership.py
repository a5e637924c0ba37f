"""A running node follows who it may link with and whether it votes, as the validator set
changes on chain and as its operator adds observers.

- :func:`follow_validator_set`: every second, the sets in force at the next two heights
  are read from the chain; keys they add become allowed peers (the handshake's names and
  the links' TLS trust anchors, :meth:`node.tls.LinkTLS.allow`) and are expected to link,
  and an observer whose own key is added starts voting (``Node.become_validator``).
  Without it, a validator added by governance could not link with nodes started before
  the change (docs/consensus.md, "Validator-set changes").
- :func:`reload_links` (SIGHUP, with ``cityledger node rotate-tls-key`` and ``devnet
  join``): the TLS key files again, and the ``[p2p] observers`` of ``config.toml``.

Keys a change retires (a rotated validator's old key, a removed validator) are withdrawn
once they vote at none of the head and the next two heights (:func:`retire`): new
handshakes refuse them and their open links close, since a rotated-out key may be one
that leaked. Configured observers are never withdrawn. The consensus core ignores a
retired key's votes from the height the change takes effect either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ledger.errors import LedgerError
from ledger.validators import ValidatorSet
from node.chain import ChainStore
from node.config import Home
from node.peers import PeerManager
from node.tls import LinkTLS
from node.validator_peers import retired

log = logging.getLogger("cityledger.node")
FOLLOW_INTERVAL_S = 1.0


class Member(Protocol):
    chain: ChainStore
    peers: PeerManager
    link_tls: LinkTLS | None
    is_validator: bool

    @property
    def public_key(self) -> bytes: ...

    async def become_validator(self) -> None: ...


def allow(node: Member, names: dict[bytes, str], *, expect: bool) -> list[bytes]:
    """Let the keys of ``names`` link with ``node``; returns the ones that are new."""
    new = {k: n for k, n in names.items() if k not in node.peers.names}
    if not new:
        return []
    node.peers.names.update(new)  # the handshake reads the same dict
    if node.link_tls is not None:
        node.link_tls.allow(new)
    if expect:
        node.peers.expect(list(new))
    else:
        node.peers.observers.update(new)
    log.info("peers allowed from now on: %s", ", ".join(sorted(new.values())))
    return list(new)


def retire(node: Member) -> list[str]:
    """Withdraw the validator keys that vote no more (:func:`node.validator_peers.retired`);
    returns their names."""
    gone = retired(node.chain, node.peers.observers) & set(node.peers.names)
    if not gone:
        return []
    if node.link_tls is not None:
        node.link_tls.withdraw(gone)
    names = node.peers.withdraw(gone)
    log.info("retired validator keys may link no more: %s", ", ".join(names))
    return names


async def follow_validator_set(node: Member, interval_s: float = FOLLOW_INTERVAL_S) -> None:
    """Allow each validator a set change adds; start voting when this node is added."""
    seen: bytes | None = None
    while True:
        await asyncio.sleep(interval_s)
        height = node.chain.head().height
        upcoming = [node.chain.validators_at(height + 1), node.chain.validators_at(height + 2)]
        fingerprint = b"".join(s.hash for s in upcoming)
        if fingerprint == seen:
            continue
        seen = fingerprint
        allow(node, _names(upcoming), expect=True)
        retire(node)
        if not node.is_validator and node.public_key in upcoming[1]:
            log.info("this node's key is in the validator set from the next heights on")
            await node.become_validator()


def _names(sets: list[ValidatorSet]) -> dict[bytes, str]:
    return {v.public_key: v.name for s in sets for v in s.validators}


def reload_links(node: Member, home: Home) -> None:
    """SIGHUP: the TLS key files again, and the observers in ``config.toml``."""
    if node.link_tls is not None:
        node.link_tls.reload()
    try:
        observers = home.load_config().p2p.observers
    except (LedgerError, OSError) as exc:  # a bad edit must not stop a running node
        log.error("config.toml not reloaded (observers unchanged): %s", exc)
        return
    allow(node, {bytes.fromhex(k): f"observer-{k[:8]}" for k in observers}, expect=False)
