"""A ring buffer of the last events of a run, formatted only when a run fails."""

from __future__ import annotations

from collections import deque
from typing import Any

from ledger.votes import Proposal, Vote, VoteType


def short(value: bytes) -> str:
    return value.hex()[:6] if value else "nil"


def describe(obj: Any, names: dict[bytes, str]) -> str:
    if isinstance(obj, Vote):
        kind = "prevote" if obj.type == VoteType.PREVOTE else "precommit"
        who = names.get(obj.validator, short(obj.validator))
        return f"{kind}(h{obj.height} r{obj.round} {short(obj.block_hash)} by {who})"
    if isinstance(obj, Proposal):
        who = names.get(obj.proposer, short(obj.proposer))
        return (
            f"proposal(h{obj.height} r{obj.round} {short(obj.block_hash)} "
            f"vr={obj.valid_round} by {who})"
        )
    if isinstance(obj, bytes):
        return short(obj)
    return str(obj)


class Trace:
    def __init__(self, maxlen: int = 200) -> None:
        self.events: deque[tuple[int, str, str, Any]] = deque(maxlen=maxlen)

    def add(self, time: int, who: str, what: str, obj: Any = None) -> None:
        self.events.append((time, who, what, obj))

    def lines(self, names: dict[bytes, str]) -> list[str]:
        out = []
        for time, who, what, obj in self.events:
            detail = "" if obj is None else " " + describe(obj, names)
            out.append(f"{time:>8}ms  {who:<5} {what}{detail}")
        return out
