"""Who may link with this node as a validator, now that the set changes on chain.

The peer manager and the link TLS are built from a dict of allowed keys and names
(:func:`allowed_peers`); this adds every key a validator-set change on the
chain has put in a set, so that a node started after a change links with the
validators it added. Keys are never taken out (a removed validator is still a peer
whose votes the core ignores, and it may serve blocks). Learning a change while
running is left to the peer manager (node/peers.py, node/handshake.py)."""

from __future__ import annotations

from ledger.genesis import Genesis
from node.chain import ChainStore
from node.config import NodeConfig

MAX_CHANGES_READ = 1000


def validator_names(chain: ChainStore) -> dict[bytes, str]:
    """Every validator key of the genesis set and of the changes on ``chain``."""
    names = {v.public_key: v.name for v in chain.genesis.validators.validators}
    for _, validators in chain.validator_changes(0, limit=MAX_CHANGES_READ):
        for v in validators.validators:
            names.setdefault(v.public_key, v.name)
    return names


def allowed_peers(
    genesis: Genesis, config: NodeConfig, chain: ChainStore | None = None
) -> dict[bytes, str]:
    """The keys a node links with, and their names: validators (of genesis, and of the
    set changes on ``chain`` when given) and configured observers."""
    if chain is None:
        names = {v.public_key: v.name for v in genesis.validators.validators}
    else:
        names = validator_names(chain)
    for hex_key in config.p2p.observers:
        names[bytes.fromhex(hex_key)] = f"observer-{hex_key[:8]}"
    return names


def is_or_becomes_validator(chain: ChainStore, key: bytes) -> bool:
    """Whether ``key`` votes in the genesis set or in a set the chain has put in force
    (or will, within two heights). A node whose key is in none follows as an observer;
    one added later signs from the height it is added at, once restarted or sooner if
    it was a validator before (the core counts a signer without power as an observer)."""
    head = chain.head().height
    sets = [chain.genesis.validators, chain.validators_at(head + 2)]
    sets.extend(s for _, s in chain.validator_changes(0, limit=MAX_CHANGES_READ))
    return any(key in s for s in sets)
