"""The explorer's checks in Python, from the same bytes: what the JSON vectors run.

Composed of the light client the CLI uses (:mod:`lightclient`): the genesis must hash to
the link's, the validator history is verified from it, the permit answer goes through
:func:`lightclient.answers.verify_answer` with the CLI's freshness, and a time asked
about is judged on the permit as it stood then (as ``cityledger permit check --at``).
A block answer (the blocks page) is checked as ``cityledger block`` does
(:mod:`lightclient.blocks`), a log extension (the checkpoints page) as ``cityledger audit
consistency`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from contracts import state_keys as sk
from contracts.permits import permit_valid_at
from ledger.encoding import Value, decode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.merkle import ConsistencyProof
from lightclient.answers import Freshness, Verified, verify_answer
from lightclient.blocks import read_block, verify_block
from lightclient.errors import VerificationError
from lightclient.headers import verify_certified
from lightclient.permits import (
    PermitView,
    entries_by,
    state_height_at,
    verify_permit,
    verify_permit_then,
)
from lightclient.records import verify_state_view
from lightclient.validator_history import forget, remember, verify_history


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str
    valid: bool | None = None


def check_vector(vector: dict[str, Value]) -> Verdict:
    """The verdict on one vector's bytes; a refusal is a verdict, never an exception."""
    try:
        return _check(vector)
    except (VerificationError, LedgerError) as exc:  # DecodeError is a LedgerError
        return Verdict(False, f"NOT verified: {exc}")


def _check(v: dict[str, Value]) -> Verdict:
    raw = bytes.fromhex(v["genesis"])
    if sha256(raw).hexdigest() != v["genesis_hash"]:
        raise VerificationError("this node's chain did not start from the genesis in the link")
    genesis = Genesis.from_obj(decode(raw))
    forget(genesis)
    try:
        validators = decode(bytes.fromhex(v["validators"]))
        remember(verify_history(validators["history"], genesis))
        if v["kind"] == "block":
            certified = verify_block(read_block(decode(bytes.fromhex(v["answer"]))), genesis)
            return Verdict(True, certified.describe())
        if v["kind"] == "consistency":
            return _extends(genesis, v)
        at_ms = v["at_ms"]
        if v["answer"] is None:
            return _absent(genesis, v)
        fresh = Freshness.current(v["now_ms"], v["max_age_ms"])
        if at_ms is not None:
            fresh = Freshness.covering(v["now_ms"], v["max_age_ms"], at_ms)
        latest = _verified(v["answer"], genesis, v, fresh)
        view = latest.view if at_ms is None else _then(latest, genesis, v, at_ms)
    finally:
        forget(genesis)
    valid, _why = permit_valid_at(view.permit, v["now_ms"] if at_ms is None else at_ms)
    if not view.history or view.history[0].time_ms > (at_ms or v["now_ms"]):
        valid = False
    return Verdict(True, latest.certified.describe(), valid)


def _extends(genesis: Genesis, v: dict[str, Value]) -> Verdict:
    """Today's certified log extends the checkpoint's (``old_size``, ``old_root``), as
    :func:`lightclient.checkpoints.verify_extension` checks it."""
    answer = decode(bytes.fromhex(v["answer"]))
    new = verify_certified(answer, genesis)
    proof = ConsistencyProof.from_obj(answer["proof"])
    if (proof.old_size, proof.new_size) != (v["old_size"], new.header.log_size):
        raise VerificationError("the proof is not between the two certified log sizes")
    proof.verify(bytes.fromhex(v["old_root"]), new.header.log_root)
    return Verdict(True, new.describe())


def _absent(genesis: Genesis, v: dict[str, Value]) -> Verdict:
    """The node said 404: the permit's absence must be proven (as ``cityledger permit``)."""
    answer = decode(bytes.fromhex(v["absence"]))
    key = sk.permit_key(v["permit_id"])
    fresh = Freshness.current(v["now_ms"], v["max_age_ms"])
    verified = verify_answer(lambda: verify_state_view(answer, genesis, key), genesis, None, fresh)
    if verified.view.value is not None:
        raise VerificationError(f"the node said permit {v['permit_id']!r} does not exist")
    return Verdict(True, verified.certified.describe(), False)


def _verified(
    answer_hex: str, genesis: Genesis, v: dict[str, Value], freshness: Freshness
) -> Verified[PermitView]:
    answer = decode(bytes.fromhex(answer_hex))
    return verify_answer(
        lambda: verify_permit(answer, genesis, v["permit_id"]), genesis, None, freshness
    )


def _then(
    latest: Verified[PermitView], genesis: Genesis, v: dict[str, Value], at_ms: int
) -> PermitView:
    height = state_height_at(latest.view, at_ms)
    if height is None or entries_by(latest.view, at_ms) == len(latest.view.history):
        return latest.view
    then_hex = v["answers_at"][str(height)]
    then = _verified(then_hex, genesis, v, Freshness.at_height(v["now_ms"], height))
    verify_permit_then(then.view, latest.view, at_ms)
    return then.view
