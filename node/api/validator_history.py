"""``GET /v1/validators``' body: the set in force at a height and the certified changes.

Each change is what :func:`lightclient.validator_history.verify_history` checks: the
header at the change height (whose ``next_validators_hash`` names the new set), its
commit certificate, and the new set. Only changes whose header is committed are listed.
"""

from __future__ import annotations

from ledger.encoding import Value
from node.chain import ChainStore

MAX_HISTORY = 1000  # changes per answer; ``after`` pages on


def history(chain: ChainStore, after: int = 0) -> list[Value]:
    """The certified changes in force after height ``after``, oldest first."""
    head = chain.head().height
    out: list[Value] = []
    before_base = chain.base_history()  # a state-synced node holds no blocks before its base
    for effective, validators in chain.validator_changes(after, limit=MAX_HISTORY):
        change_height = effective - 1
        if change_height in before_base:
            out.append(before_base[change_height])
            continue
        header = chain.header(change_height) if change_height <= head else None
        cert = chain.certificate(change_height) if header is not None else None
        if header is None or cert is None:
            break
        out.append(
            {
                "height": change_height,
                "header": header.to_obj(),
                "certificate": cert.to_obj(),
                "validators": validators.to_obj(),
            }
        )
    return out


def validators_answer(chain: ChainStore, height: int | None, after: int = 0) -> dict[str, Value]:
    """The set voting on ``height`` (default: the next block's) and the change history."""
    at = chain.head().height + 1 if height is None else height
    vs = chain.validators_at(at)
    return {
        "height": at,
        "validators": vs.to_obj(),
        "hash": vs.hash,
        "total_power": vs.total_power,
        "quorum_power": vs.quorum_power,
        "history": history(chain, after),
    }
