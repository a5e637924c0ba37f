"""The coordinator's step: a draft genesis from the founding organisations' join requests.

Every request's signatures are checked first; then nothing may appear twice (an
organisation id, a validator name, a p2p address, any key — member or validator —
across all requests), and every request must be for the chain being founded. The
draft lists the organisations (and their validators) sorted by organisation id, each
validator with power 1, so anyone holding the same requests and parameters assembles
the same body and the same hash, whatever order the files were given in. The draft
carries no signature yet: each founding organisation signs it
(:meth:`GenesisFile.signed_by`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.encoding import Value
from ledger.founding import GenesisFile, Peer
from ledger.genesis import Genesis, ValidatorOrg, founding_consensus
from ledger.join_request import JoinRequest, JoinRequestError
from ledger.validators import Validator, ValidatorSet


def assemble(
    requests: Sequence[tuple[str, JoinRequest]],
    chain_id: str,
    genesis_time_ms: int,
    app: dict[str, Value] | None = None,
) -> GenesisFile:
    """The draft genesis of ``requests`` (each named by its file, for the errors)."""
    for source, request in requests:
        if request.chain_id != chain_id:
            raise JoinRequestError(f"{source} is a request for chain {request.chain_id!r}")
        try:
            request.verify()
        except JoinRequestError as exc:
            raise JoinRequestError(f"{source}: {exc}") from None
    _refuse_duplicates(requests)
    ordered = sorted((r for _, r in requests), key=lambda r: r.organisation.id)
    with_validator = [r for r in ordered if r.validator is not None]
    validators = tuple(
        Validator(r.validator.name, r.validator.public_key, 1)
        for r in with_validator
        if r.validator is not None
    )
    if not validators:
        raise JoinRequestError("no request names a validator: nobody would run this network")
    genesis = Genesis(
        chain_id,
        genesis_time_ms,
        ValidatorSet(validators),
        tuple(r.organisation for r in ordered),
        founding_consensus(),
        dict(app or {}),
        validator_orgs=tuple(
            ValidatorOrg(r.validator.public_key, r.organisation.id)
            for r in with_validator
            if r.validator is not None
        ),
    )
    peers = tuple(
        Peer(r.validator.name, r.validator.public_key, r.validator.p2p)
        for r in with_validator
        if r.validator is not None
    )
    return GenesisFile(genesis, (), peers)


def _refuse_duplicates(requests: Sequence[tuple[str, JoinRequest]]) -> None:
    """One line naming both files for the first thing listed twice."""
    seen: dict[str, str] = {}
    for source, request in requests:
        org = request.organisation
        keys = [m.public_key for m in org.members]
        things = [f"organisation id {org.id!r}"]
        if request.validator is not None:
            things.append(f"validator name {request.validator.name!r}")
            things.append(f"p2p address {request.validator.p2p}")
            keys.append(request.validator.public_key)
        things += [f"key {k.hex()}" for k in keys]
        for thing in things:
            if thing in seen:
                shown = thing[:20] + "…" if thing.startswith("key ") else thing
                raise JoinRequestError(f"{shown} is in both {seen[thing]} and {source}")
            seen[thing] = source
