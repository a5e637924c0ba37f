"""The genesis of the unit tests' chains, built from a table of organisations.

The API, CLI, contract and node tests each have their own chain id, keys and
organisations; :func:`genesis_from_table` turns those into a :class:`Genesis` the
same way for all of them: every validator with power 1, every organisation in one
city, every member under a key given by ``member_key(org id, member name)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.genesis import Genesis, Member, Organisation
from ledger.validators import Validator, ValidatorSet

# organisation id -> (kind, [(member name, roles)])
OrgTable = Mapping[str, tuple[str, Iterable[tuple[str, tuple[str, ...]]]]]


def spaced_title(org_id: str) -> str:
    """``"carrier-a"`` -> ``"Carrier A"``."""
    return org_id.replace("-", " ").title()


def genesis_from_table(
    chain_id: str,
    genesis_time_ms: int,
    validators: Iterable[tuple[str, PrivateKey]],
    orgs: OrgTable,
    *,
    member_key: Callable[[str, str], PrivateKey],
    city: str,
    org_name: Callable[[str], str] = str.title,
    app: dict[str, Value] | None = None,
) -> Genesis:
    """A genesis of ``validators`` (name, key) and the organisations of ``orgs``."""
    organisations = tuple(
        Organisation(
            org_id,
            org_name(org_id),
            kind,
            city,
            tuple(
                Member(member_key(org_id, name).public_key, roles, name) for name, roles in members
            ),
        )
        for org_id, (kind, members) in orgs.items()
    )
    validator_set = ValidatorSet(tuple(Validator(name, k.public_key, 1) for name, k in validators))
    return Genesis(
        chain_id, genesis_time_ms, validator_set, organisations, app={} if app is None else app
    )
