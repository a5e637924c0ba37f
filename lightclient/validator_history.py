"""The validator set at any height, from the genesis file and a chain of certified changes.

A change made by block H's execution is in force from H+2, and header H+1 names it as
its ``next_validators_hash``. So one change is: the header at the change height c
(where ``next_validators_hash`` differs from ``validators_hash``), its commit
certificate, and the new set, in force from c+1. :func:`verify_history` checks each
against the set before it — the header names that set, >2/3 of its power signed the
certificate, the new set hashes to the header's next hash — so a node can forge no
change without the signatures of the set it replaces. A node that leaves a change out
gains nothing: a header certified by the new set names a set the client does not hold
and is refused (docs/formats.md, "Validator-set history").

:func:`remember` keeps the longest verified history per chain (bounded) for the
certificate checks of :mod:`lightclient.headers`; a later history must extend it.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

from ledger.block import BlockHeader
from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from lightclient.errors import VerificationError

MAX_CHANGES = 10_000
MAX_CHAINS = 16


@dataclass(frozen=True, slots=True)
class SetChange:
    """A certified change: the set in force from ``height`` on."""

    height: int
    validators: ValidatorSet
    header: BlockHeader
    cert: CommitCertificate


@dataclass(frozen=True)
class ValidatorHistory:
    """The genesis set and the verified changes after it, in height order."""

    genesis: Genesis
    changes: tuple[SetChange, ...] = ()

    def at(self, height: int) -> ValidatorSet:
        """The set that votes on block ``height`` (as far as the changes known reach)."""
        i = bisect.bisect_right([c.height for c in self.changes], height)
        return self.genesis.validators if i == 0 else self.changes[i - 1].validators

    def extends(self, other: ValidatorHistory) -> bool:
        """Whether this history starts with every change of ``other``."""
        mine = [(c.height, c.validators.hash) for c in self.changes]
        return mine[: len(other.changes)] == [(c.height, c.validators.hash) for c in other.changes]

    def to_obj(self) -> list[Value]:
        return [
            {
                "height": c.header.height,
                "header": c.header.to_obj(),
                "certificate": c.cert.to_obj(),
                "validators": c.validators.to_obj(),
            }
            for c in self.changes
        ]


def verify_history(items: Value, genesis: Genesis) -> ValidatorHistory:
    """The history ``items`` (a list of ``{header, certificate, validators}``) proves, each
    change checked by the set before it; :class:`VerificationError` naming the first
    that does not check out."""
    if not isinstance(items, list) or len(items) > MAX_CHANGES:
        raise VerificationError(f"the validator history must be a list of <= {MAX_CHANGES}")
    changes: list[SetChange] = []
    for n, item in enumerate(items):
        change = _change(item, n)
        before = changes[-1].validators if changes else genesis.validators
        if changes and change.header.height < changes[-1].height:
            raise VerificationError(f"validator change {n} is out of height order")
        _check_change(change, before, genesis, n)
        changes.append(change)
    return ValidatorHistory(genesis, tuple(changes))


def _change(item: Value, n: int) -> SetChange:
    if not isinstance(item, dict):
        raise VerificationError(f"validator change {n} is not a map")
    try:
        header = BlockHeader.from_obj(item.get("header"))
        cert = CommitCertificate.from_obj(item.get("certificate"))
        validators = ValidatorSet.from_obj(item.get("validators"))
    except LedgerError as exc:
        raise VerificationError(f"validator change {n} is malformed: {exc}") from None
    return SetChange(header.height + 1, validators, header, cert)


def _check_change(change: SetChange, before: ValidatorSet, genesis: Genesis, n: int) -> None:
    header = change.header
    if header.chain_id != genesis.chain_id:
        raise VerificationError(f"validator change {n} is for chain {header.chain_id!r}")
    if header.validators_hash != before.hash:
        raise VerificationError(
            f"validator change {n} (height {header.height}) names a set other than the one "
            "in force there (a change before it is missing)"
        )
    if header.next_validators_hash != change.validators.hash:
        raise VerificationError(
            f"validator change {n}: its set is not the one header {header.height} names next"
        )
    if header.next_validators_hash == header.validators_hash:
        raise VerificationError(f"validator change {n} changes nothing")
    try:
        change.cert.verify(before, genesis.chain_id, height=header.height, block_hash=header.hash)
    except LedgerError as exc:
        raise VerificationError(
            f"validator change {n}: the certificate of height {header.height} does not check "
            f"out against the set before it: {exc}"
        ) from None


_KNOWN: OrderedDict[bytes, ValidatorHistory] = OrderedDict()


def remember(history: ValidatorHistory) -> ValidatorHistory:
    """Keep ``history`` for its chain if it extends the one known (the longest verified
    one wins); a history that contradicts a known one is refused: two certified sets for
    one height mean the old set signed a fork."""
    key = history.genesis.hash
    known = _KNOWN.get(key)
    if known is not None and not history.extends(known):
        if known.extends(history):
            return known
        raise VerificationError("the validator history contradicts one verified before")
    _KNOWN[key] = history
    _KNOWN.move_to_end(key)
    while len(_KNOWN) > MAX_CHAINS:
        _KNOWN.popitem(last=False)
    return history


def known_history(genesis: Genesis) -> ValidatorHistory:
    """The longest history verified for this chain so far (the genesis set alone if none)."""
    known = _KNOWN.get(genesis.hash)
    return known if known is not None else ValidatorHistory(genesis)


def set_at(genesis: Genesis, height: int) -> ValidatorSet:
    return known_history(genesis).at(height)


def forget(genesis: Genesis) -> None:
    """Drop what is known for this chain (tests)."""
    _KNOWN.pop(genesis.hash, None)
