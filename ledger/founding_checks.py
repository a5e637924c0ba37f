"""Whether a genesis file can found a network: who signed it, and whether it could run.

``genesis verify``, ``node init`` and ``node start`` ask the same question here, and
each refuses with the first problem, in one line:

* nobody could govern it: no organisation of kind ``agency`` with an ``admin`` member;
* a member holding a role its organisation's kind may not grant (a trader with the
  customs role; the caller passes the contracts' table in);
* nobody could run it: a validator that no organisation runs (``validator_orgs``), or
  fewer validators than ``app.min_validators`` (default 4; a genesis that is not a
  devnet may not set it lower than 4);
* its keys are public: a validator or member key of a non-devnet genesis is one of the
  demo keys anyone with the source can derive (the caller passes that set in);
* a founding signature that does not verify over this very body (altered, or made for
  another body), or made by a key that is not an admin of the organisation it names;
* a non-devnet genesis missing the signature of one of its founding organisations.

Unknown roles and malformed keys never get this far: the genesis file does not load.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ledger.errors import LedgerError
from ledger.founding import FoundingSignature, GenesisFile, admin_org
from ledger.genesis import Genesis

MIN_VALIDATORS_KEY = "min_validators"
DEFAULT_MIN_VALIDATORS = 4
"""The least ``app.min_validators`` of a genesis that is not a devnet (n = 3f+1, f = 1)."""


class GenesisRefused(LedgerError):
    code = "genesis_refused"


def min_validators(genesis: Genesis) -> int:
    """``genesis.app["min_validators"]``, default 4 (the governance rails read the same)."""
    value = genesis.app.get(MIN_VALIDATORS_KEY, DEFAULT_MIN_VALIDATORS)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GenesisRefused("genesis app.min_validators must be a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class FoundingReport:
    """What ``genesis verify`` shows: the hash, who signed, who has not, what is wrong."""

    genesis: Genesis
    signed: tuple[FoundingSignature, ...]
    unsigned: tuple[str, ...]
    problems: tuple[str, ...]


KindRoles = Mapping[str, Collection[str]]


def founding_report(
    file: GenesisFile, public_keys: Collection[bytes], kind_roles: KindRoles | None = None
) -> FoundingReport:
    """Every check of the module docstring on ``file``; ``public_keys`` are the
    derivable demo keys a genesis that is not a devnet may not hold, ``kind_roles`` the
    roles each kind of organisation may grant (unchecked when None)."""
    genesis = file.genesis
    problems = [*runnable_problems(genesis)]
    if kind_roles is not None:
        problems += role_problems(genesis, kind_roles)
    if not genesis.devnet:
        problems += demo_key_problems(genesis, public_keys)
    signed, bad = _sort_signatures(genesis, file.signatures)
    problems += bad
    signers = {s.org for s in signed}
    unsigned = tuple(o.id for o in genesis.organisations if o.id not in signers)
    if unsigned and not genesis.devnet:
        problems.append(
            f"not signed by founding organisation(s) {', '.join(unsigned)} "
            "(each signs with `cityledger genesis sign`)"
        )
    return FoundingReport(genesis, signed, unsigned, tuple(problems))


def check_genesis_file(
    file: GenesisFile, public_keys: Collection[bytes], kind_roles: KindRoles | None = None
) -> None:
    """Raise :class:`GenesisRefused` with the first problem of :func:`founding_report`."""
    problems = founding_report(file, public_keys, kind_roles).problems
    if problems:
        raise GenesisRefused(f"genesis refused: {problems[0]}")


def runnable_problems(genesis: Genesis) -> list[str]:
    """Could anyone govern and run this genesis?"""
    problems = []
    if not any(
        o.kind == "agency" and any("admin" in m.roles for m in o.members)
        for o in genesis.organisations
    ):
        problems.append("no founding agency has an admin member: nobody could govern this network")
    for v in genesis.validators.validators:
        if genesis.org_of_validator(v.public_key) is None:
            problems.append(f"validator {v.name!r} is run by no founding organisation")
    try:
        least = min_validators(genesis)
    except GenesisRefused as exc:
        return [*problems, str(exc)]
    if least < DEFAULT_MIN_VALIDATORS and not genesis.devnet:
        problems.append(
            f"app.min_validators is {least}: only a devnet may go below {DEFAULT_MIN_VALIDATORS}"
        )
    if len(genesis.validators) < least:
        problems.append(
            f"{len(genesis.validators)} validator(s), fewer than the minimum of {least} "
            "(app.min_validators)"
        )
    return problems


def role_problems(genesis: Genesis, kind_roles: KindRoles) -> list[str]:
    """Members holding roles their organisation's kind may not grant."""
    return [
        f"member {o.id}/{m.name}: an organisation of kind {o.kind!r} cannot grant roles "
        f"{sorted(set(m.roles) - set(kind_roles.get(o.kind, ())))}"
        for o in genesis.organisations
        for m in o.members
        if not set(m.roles) <= set(kind_roles.get(o.kind, ()))
    ]


def demo_key_problems(genesis: Genesis, public_keys: Collection[bytes]) -> list[str]:
    """Validators and members of ``genesis`` whose key is in ``public_keys``."""
    found = [
        f"validator {v.name!r}"
        for v in genesis.validators.validators
        if v.public_key in public_keys
    ]
    found += [
        f"member {o.id}/{m.name}"
        for o in genesis.organisations
        for m in o.members
        if m.public_key in public_keys
    ]
    if not found:
        return []
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return [
        f"{found[0]}{more} use(s) a public demo key (derivable from the source); "
        "only a devnet genesis may"
    ]


def _sort_signatures(
    genesis: Genesis, signatures: tuple[FoundingSignature, ...]
) -> tuple[tuple[FoundingSignature, ...], list[str]]:
    good: list[FoundingSignature] = []
    bad: list[str] = []
    for sig in signatures:
        who = f"founding signature of {sig.org!r} (key {sig.public_key.hex()[:16]}…)"
        if admin_org(genesis, sig.public_key) != sig.org:
            bad.append(f"{who}: the key is not an admin of {sig.org!r} in this genesis")
        elif not sig.verifies(genesis):
            bad.append(
                f"{who} does not verify over this genesis hash: the body was changed "
                "after signing, or the signature was altered"
            )
        else:
            good.append(sig)
    return tuple(good), bad
