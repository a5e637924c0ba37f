"""How fresh an answer is when its block is old: head statements (ledger/head.py).

An idle network commits only a heartbeat block a minute, so an answer's certified
block may be older than the client's limit while still being the chain's head. Its
node then hands over the latest head statements it holds for that block
(``GET /v1/head``), and :func:`proven_head_time` turns them into a time the client can
trust — or refuses them, in one line, when any of them is for another height or block,
by a key outside that height's validator set, or not signed for this chain, or when
the signers hold too little power.

The rule: each validator counts once (its latest statement); sorted newest first,
the answer's time is the time of the statement at which the signers' power first
exceeds 2/3 of the height's total. Validators with more than 2/3 of the power have
then signed at that time or later, so more than 1/3 of the power — more than any
byzantine coalition holds — is correct and still had this block as its committed
head at that time: byzantine validators signing any time they like cannot move it
later than the correct ones' clocks put it. (The median by power would not do: half
the power includes a third that may be byzantine, and their future times would be
enough to lift it.) How stale can the answer still be? A correct validator signs
"head H" only until it commits H+1, and H+1 needs precommits from more than 2/3 of
the power; so at that time, at most the commit of H+1 was under way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.head import HeadStatement
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader
from lightclient.validator_history import set_at

MAX_STATEMENTS = 1024  # more than any honest node sends (one per validator)


@dataclass(frozen=True, slots=True)
class HeadTime:
    """What head statements prove: block ``height`` was the head at ``time_ms``, by
    validators ``signers`` with ``power`` of ``total_power`` (signed at or after it)."""

    height: int
    time_ms: int
    signers: tuple[str, ...]
    power: int
    total_power: int


def proven_head_time(
    statements: Sequence[Value], certified: CertifiedHeader, genesis: Genesis
) -> HeadTime:
    """The time ``statements`` prove ``certified``'s block was still the head (the rule
    in the module docstring); :class:`VerificationError` naming what is wrong."""
    if len(statements) > MAX_STATEMENTS:
        raise VerificationError(f"{len(statements)} head statements (at most {MAX_STATEMENTS})")
    validators = set_at(genesis, certified.height)
    latest: dict[bytes, HeadStatement] = {}
    for obj in statements:
        s = _checked(obj, certified, genesis)
        if s.validator not in validators:
            raise VerificationError(
                f"a head statement is signed by {s.validator.hex()[:16]}…, not a validator "
                f"of height {certified.height}"
            )
        known = latest.get(s.validator)
        if known is None or s.time_ms > known.time_ms:
            latest[s.validator] = s
    total = validators.total_power
    power = 0
    signers: list[bytes] = []
    for s in sorted(latest.values(), key=lambda s: s.time_ms, reverse=True):
        power += validators.power_of(s.validator)
        signers.append(s.validator)
        if power * 3 > total * 2:
            names = tuple(v.name for v in validators.validators if v.public_key in signers)
            return HeadTime(certified.height, s.time_ms, names, power, total)
    raise VerificationError(
        f"head statements for height {certified.height} come from validators with {power} of "
        f"{total} voting power (more than 2/3 needed)"
    )


def _checked(obj: Value, certified: CertifiedHeader, genesis: Genesis) -> HeadStatement:
    """One statement, well-formed, for the answer's block, signed for this chain."""
    try:
        s = HeadStatement.from_obj(obj)
    except LedgerError as exc:
        raise VerificationError(f"a head statement is malformed: {exc}") from None
    if s.height != certified.height:
        raise VerificationError(
            f"a head statement is for height {s.height}, the answer's block is {certified.height}"
        )
    if s.block_hash != certified.header.hash:
        raise VerificationError(
            f"a head statement names block {s.block_hash.hex()[:16]}… at height {s.height}, "
            f"not the answer's certified block {certified.header.hash.hex()[:16]}…"
        )
    try:
        s.verify_signature(genesis.chain_id)
    except LedgerError:
        raise VerificationError(
            f"a head statement by {s.validator.hex()[:16]}… is not signed for chain "
            f"{genesis.chain_id!r} (another chain's, or forged)"
        ) from None
    return s
