"""Who may link with this node as a validator, now that the set changes on chain.

The peer manager and the link TLS are built from a dict of allowed keys and names
(``node.runtime.allowed_peers``): the validators of the sets in force around this
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

from node.chain import ChainStore

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
