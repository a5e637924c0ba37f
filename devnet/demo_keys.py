"""The demo's public keys: every key the demo derives from a label in the source.

Anyone with the source computes these private keys (``PrivateKey.from_label``), so a
genesis that is not a devnet may hold none of them as a validator or member key
(:mod:`ledger.founding_checks`). The set covers the demo's founding members, the
members its scenario registers later, its meters and its validator labels.
"""

from __future__ import annotations

import functools

from devnet import demo_data as data
from devnet.demo_plan import member_label
from ledger.crypto import PrivateKey
from ledger.errors import ValidationError
from ledger.genesis import Organisation, ValidatorOrg

MAX_DEMO_VALIDATORS = 64
# Members the scenario registers after genesis (devnet/demo.py, plan_identity).
LATER_MEMBERS = (("hanbit-electronics", "clerk-2"), ("korea-ocean-lines", "temp"))


def demo_labels() -> list[str]:
    """Every label the demo derives a key from."""
    members = {org: list(spec[3]) for org, spec in data.ORGANISATIONS.items()}
    members[data.NEW_ORG[0]] = list(data.NEW_ORG[4])
    labels = [member_label(org, name) for org, names in members.items() for name in names]
    labels += [member_label(org, name) for org, name in LATER_MEMBERS]
    labels += [
        f"demo/meter/{org}/{k}"
        for org, (count, _) in data.PROSUMER_METERS.items()
        for k in range(count)
    ]
    labels += [f"demo/validator-{i}" for i in range(MAX_DEMO_VALIDATORS)]
    return labels


@functools.cache
def public_demo_keys() -> frozenset[bytes]:
    """The public keys of :func:`demo_labels` (computed once)."""
    return frozenset(PrivateKey.from_label(label).public_key for label in demo_labels())


def demo_admin_keys() -> dict[str, PrivateKey]:
    """Each demo organisation's admin key (what ``devnet up`` writes to ``keys/``)."""
    return {
        org: PrivateKey.from_label(member_label(org, "admin"))
        for org, spec in data.ORGANISATIONS.items()
        if "admin" in spec[3]
    }


def operators_in_turn(
    validators: list[bytes], organisations: tuple[Organisation, ...]
) -> tuple[ValidatorOrg, ...]:
    """A devnet's ``validator_orgs``: the founding agencies run its validators in turn
    (any organisation does if none is an agency)."""
    runners = [o.id for o in organisations if o.kind == "agency"] or [o.id for o in organisations]
    if not runners:
        raise ValidationError("a devnet needs at least one founding organisation")
    return tuple(ValidatorOrg(key, runners[i % len(runners)]) for i, key in enumerate(validators))
