"""Who may link with this node as a validator, now that the set changes on chain.

The peer manager and the link TLS are built from a dict of allowed keys and names
(:func:`allowed_peers`): the validators of the sets in force around this
node's head — the genesis set and every change on the chain, less the keys that are
*retired* (in none of the sets that vote at the head and the next two heights). A
retired key — the old key of a rotated validator, a removed agency's validator —
holds no power, and it must not keep a window onto the chain either: it could be the
very key that was rotated because it leaked, and a link receives every block.
Learning a change while running is :func:`node.membership.follow_validator_set`.
A retired validator an operator wants to keep as a follower is listed in
``[p2p] observers``, which is never retired."""

from __future__ import annotations

from collections.abc import Collection

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


def in_force(chain: ChainStore) -> set[bytes]:
    """The keys that vote at the head or at one of the next two heights."""
    head = chain.head().height
    sets = (chain.validators_at(h) for h in (head, head + 1, head + 2))
    return {v.public_key for s in sets for v in s.validators}


def retired(chain: ChainStore, observers: Collection[bytes] = ()) -> set[bytes]:
    """Keys that were validators on ``chain`` and vote no more, unless configured as
    observers."""
    return set(validator_names(chain)) - in_force(chain) - set(observers)


def current_validator_names(
    chain: ChainStore, observers: Collection[bytes] = ()
) -> dict[bytes, str]:
    """:func:`validator_names` less the :func:`retired` keys."""
    gone = retired(chain, observers)
    return {k: n for k, n in validator_names(chain).items() if k not in gone}


def allowed_peers(
    genesis: Genesis, config: NodeConfig, chain: ChainStore | None = None
) -> dict[bytes, str]:
    """The keys a node links with, and their names: validators (of genesis, and of the
    set changes on ``chain`` when given, less the retired ones) and configured observers."""
    observers = {
        bytes.fromhex(hex_key): f"observer-{hex_key[:8]}" for hex_key in config.p2p.observers
    }
    if chain is None:
        names = {v.public_key: v.name for v in genesis.validators.validators}
    else:
        names = current_validator_names(chain, observers)
    names.update(observers)
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
