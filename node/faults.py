"""Fault-injection hooks for the end-to-end fault suite. Inert unless enabled by environment.

* ``CITYLEDGER_CRASH_AT=<point>[:<n>]`` makes the process exit at once (``os._exit(70)``,
  no cleanup, like a power cut) the n-th time (default 1st) it reaches the named point.
  Points: ``commit.before_write``, ``commit.after_write``, ``sign.after_persist``,
  ``sign.before_send``.
* ``CITYLEDGER_BYZANTINE=equivocate`` turns a validator into an attacker: for every vote
  and proposal it signs, it also signs a conflicting one (with the raw key, bypassing
  the double-sign guard) and sends each version to a different half of its peers.

Reading the environment once at import keeps the hooks free on the hot path.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ledger.crypto import PrivateKey
from ledger.votes import NIL, Proposal, Vote

if TYPE_CHECKING:
    from node.executor import Executor
    from node.wire import ProposalMsg, VoteMsg

_CRASH = os.environ.get("CITYLEDGER_CRASH_AT", "")
_POINT, _, _COUNT = _CRASH.partition(":")
_TARGET = int(_COUNT) if _COUNT.isdigit() else 1
_seen = 0

BYZANTINE = os.environ.get("CITYLEDGER_BYZANTINE", "")
CRASH_EXIT_CODE = 70


def crash_point(name: str) -> None:
    """Exit immediately if the environment asks to crash here."""
    global _seen
    if name != _POINT:
        return
    _seen += 1
    if _seen >= _TARGET:
        sys.stderr.write(f"crash point {name} reached: exiting\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)


def conflicting(
    msg: ProposalMsg | VoteMsg, key: PrivateKey, chain_id: str, executor: Executor
) -> ProposalMsg | VoteMsg:
    """A second, conflicting signed version of ``msg`` (same height, round and step)."""
    from node.wire import ProposalMsg, VoteMsg

    if isinstance(msg, VoteMsg):
        v = msg.vote
        other = NIL if not v.is_nil else bytes(32)
        return VoteMsg(Vote.create(key, chain_id, v.type, v.height, v.round, other))
    p, block = msg.proposal, msg.block
    alt = executor.build_block(
        block.txs[:-1] if block.txs else (),
        block.header.time_ms + 1,
        block.header.proposer,
        block.last_cert,
    ).block
    proposal = Proposal.create(key, chain_id, p.height, p.round, alt.hash, p.valid_round)
    return ProposalMsg(proposal, alt)
