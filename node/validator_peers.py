"""Who may link with this node as a validator, now that the set changes on chain.

The peer manager and the link TLS are built from a dict of allowed keys and names
(``node.runtime.allowed_peers``); this adds every key a validator-set change on the
chain has put in a set, so that a node started after a change links with the
validators it added. Keys are never taken out (a removed validator is still a peer
whose votes the core ignores, and it may serve blocks). Learning a change while
running is left to the peer manager (node/peers.py, node/handshake.py)."""

from __future__ import annotations

from node.chain import ChainStore

MAX_CHANGES_READ = 1000


def validator_names(chain: ChainStore) -> dict[bytes, str]:
    """Every validator key of the genesis set and of the changes on ``chain``."""
    names = {v.public_key: v.name for v in chain.genesis.validators.validators}
    for _, validators in chain.validator_changes(0, limit=MAX_CHANGES_READ):
        for v in validators.validators:
            names.setdefault(v.public_key, v.name)
    return names
