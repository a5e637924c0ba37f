"""Certified headers: a header whose commit certificate carries >2/3 of the power of the
validator set in force at its height — the genesis set, or the one the chain of
certified changes known for this chain puts there (:mod:`lightclient.validator_history`)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import BlockHeader
from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.votes import CommitCertificate
from lightclient.errors import GenesisMismatch, VerificationError, answer_field
from lightclient.validator_history import set_at


class NoHistory:
    """An answer with no record history in it to be whole — a header, a receipt (it
    belongs to one transaction), one state value, a log extension, a proposal: its
    :meth:`histories` for :func:`lightclient.answers.verify_answer` are none."""

    __slots__ = ()

    def histories(self) -> tuple[()]:
        return ()


@dataclass(frozen=True, slots=True)
class CertifiedHeader(NoHistory):
    """A header whose commit certificate verified against the genesis validators."""

    header: BlockHeader
    cert: CommitCertificate
    signers: tuple[str, ...]
    power: int
    total_power: int

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def certified(self) -> CertifiedHeader:
        """The header itself: an answer that is only a certified header (a block, a checkpoint)."""
        return self

    def describe(self) -> str:
        names = ", ".join(self.signers)
        return (
            f"verified at height {self.height} by validators {names} "
            f"({self.power} of {self.total_power} voting power)"
        )


def check_certificate(
    header: BlockHeader, cert: CommitCertificate, genesis: Genesis
) -> CertifiedHeader:
    """The header is on this chain and ``cert`` commits it with >2/3 of the power of the
    set in force at its height."""
    if header.chain_id != genesis.chain_id:
        raise GenesisMismatch(
            f"the answer is for chain {header.chain_id!r}, your genesis file for "
            f"{genesis.chain_id!r}",
            genesis.hash,
            header.prev_hash if header.height == 1 else None,
        )
    vs = set_at(genesis, header.height)
    if header.validators_hash != vs.hash:
        if vs is genesis.validators:
            raise GenesisMismatch(
                f"header {header.height} names a validator set other than your genesis file's"
                " (and no change of it is known)",
                genesis.hash,
                header.prev_hash if header.height == 1 else None,
            )
        raise VerificationError(
            f"header {header.height} names a validator set other than the one known in force "
            "there (fetch the chain's validator history: cityledger validators)"
        )
    if header.proposer not in vs:
        raise VerificationError(
            f"header {header.height} names a proposer that is not a validator of its height"
        )
    try:
        cert.verify(vs, genesis.chain_id, height=header.height, block_hash=header.hash)
    except LedgerError as exc:
        raise VerificationError(f"the commit certificate does not check out: {exc}") from None
    signers = tuple(v.name for v in vs.validators if v.public_key in cert.signers)
    return CertifiedHeader(header, cert, signers, vs.power_of_set(cert.signers), vs.total_power)


def verify_certified(
    answer: Value, genesis: Genesis, cache: dict[bytes, CertifiedHeader] | None = None
) -> CertifiedHeader:
    """Check an answer's ``header`` and ``certificate`` (and its ``height``)."""
    try:
        header = BlockHeader.from_obj(answer_field(answer, "header", "the answer"))
        cert = CommitCertificate.from_obj(answer_field(answer, "certificate", "the answer"))
    except LedgerError as exc:
        raise VerificationError(f"the answer's header or certificate is malformed: {exc}") from None
    if answer.get("height", header.height) != header.height:
        raise VerificationError(
            f"the answer says height {answer.get('height')}, its header {header.height}"
        )
    key = header.hash + cert.hash
    if cache is not None and key in cache:
        return cache[key]
    certified = check_certificate(header, cert, genesis)
    if cache is not None:
        cache[key] = certified
    return certified
