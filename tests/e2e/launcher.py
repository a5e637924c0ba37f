"""Start a node with the fault suite's faults patched in: test code, never shipped.

    python -m tests.e2e.launcher [--crash-at POINT[:N]] [--byzantine equivocate|withhold] \\
        -- node start --home HOME

The product has no fault hook: this module wraps the node's own methods at the
points the suite needs, then runs the ordinary ``cityledger`` entry point
(:func:`cli.main.main`) with the arguments after ``--``. The cluster
(:mod:`tests.e2e.cluster`) starts every node through it, faulty or not.

Crash points (``--crash-at POINT[:N]``, the N-th time the point is reached, default
1): the process leaves at once with ``os._exit(70)`` (no cleanup, no flush of the
store, like a power cut) after writing ``crash point POINT reached: exiting`` on
stderr.

==========================  ======================================================
``commit.before_write``     before :meth:`node.executor.Executor.commit` (the block's
                            one atomic batch is not written)
``commit.after_write``      after a block's batch is written (synced, for one committed
                            by consensus) by the store's writer thread,
                            :meth:`node.write_behind.WriteBehind._write_next`: the
                            event loop may already be at the next height, as it is
                            in a node since blocks are written behind
``sign.after_persist``      after :meth:`node.consensus.signer.Signer._persist`: the
                            signed state is durable, the signature never used
``sign.before_send``        before :meth:`node.driver.ConsensusDriver._broadcast`:
                            our own new proposal or vote, signed, never sent
==========================  ======================================================

``--byzantine equivocate`` turns a validator into an attacker: for every proposal and
vote it sends (:meth:`node.gossip.Gossip.broadcast_consensus`), it also signs a
conflicting one with the raw key, bypassing the double-sign guard, and sends each
version to a different half of its peers. It writes ``byzantine: equivocating`` on
stderr the first time.

``--byzantine withhold`` makes a validator vote at every height and never send a
proposal: its driver signs each proposal and drops it
(:meth:`node.driver.ConsensusDriver._broadcast`), and announces no body ahead
(:meth:`node.gossip.Gossip.announce`). It writes ``byzantine: withholding proposals``
on stderr the first time.

A patch whose target is missing (a method renamed) fails the start with a
traceback, so a fault cannot silently stop firing.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.crypto import PrivateKey
    from node.executor import Executor
    from node.wire import ProposalMsg, VoteMsg

CRASH_EXIT_CODE = 70
BYZANTINE_MODES = ("equivocate", "withhold")


@dataclass(frozen=True)
class CrashPoint:
    module: str
    owner: str  # the class whose method is wrapped
    method: str
    before: bool  # exit before the real call (else after it returns)


CRASH_POINTS: dict[str, CrashPoint] = {
    "commit.before_write": CrashPoint("node.executor", "Executor", "commit", before=True),
    "commit.after_write": CrashPoint(
        "node.write_behind", "WriteBehind", "_write_next", before=False
    ),
    "sign.after_persist": CrashPoint("node.consensus.signer", "Signer", "_persist", before=False),
    "sign.before_send": CrashPoint("node.driver", "ConsensusDriver", "_broadcast", before=True),
}


@dataclass(frozen=True)
class Faults:
    """What the launcher patches into one node process (nothing: an honest node)."""

    crash_at: str | None = None  # "point" or "point:n"
    byzantine: str | None = None  # "equivocate" or "withhold"

    def __post_init__(self) -> None:
        if self.crash_at is not None:
            point, _, count = self.crash_at.partition(":")
            if point not in CRASH_POINTS or (count and not count.isdigit()):
                raise ValueError(f"unknown crash point {self.crash_at!r}")
        if self.byzantine is not None and self.byzantine not in BYZANTINE_MODES:
            raise ValueError(f"unknown byzantine mode {self.byzantine!r}")

    def argv(self) -> list[str]:
        out = []
        if self.crash_at is not None:
            out += ["--crash-at", self.crash_at]
        if self.byzantine is not None:
            out += ["--byzantine", self.byzantine]
        return out


def command(faults: Faults | None, cli_args: list[str]) -> list[str]:
    """The argv that starts ``cityledger CLI_ARGS`` through this launcher."""
    return [
        sys.executable,
        "-m",
        "tests.e2e.launcher",
        *(faults or Faults()).argv(),
        "--",
        *cli_args,
    ]


def environment() -> dict[str, str]:
    """The child's environment: ours, with the repository on the import path (the node
    runs ``-m tests.e2e.launcher`` whatever the working directory; its spawned signature
    workers import it too)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH")
    return os.environ | {"PYTHONPATH": root + (os.pathsep + path if path else "")}


# --- crash points -----------------------------------------------------------------------


def _exit_at(name: str) -> None:
    sys.stderr.write(f"crash point {name} reached: exiting\n")
    sys.stderr.flush()
    os._exit(CRASH_EXIT_CODE)


def install_crash_point(spec: str, exit_now: Callable[[str], None] = _exit_at) -> None:
    """Wrap the method at ``spec``'s point so that its N-th call exits the process."""
    import importlib

    name, _, count = spec.partition(":")
    point = CRASH_POINTS[name]
    target = int(count) if count else 1
    owner = getattr(importlib.import_module(point.module), point.owner)
    real = getattr(owner, point.method)  # AttributeError: the point moved; fix this table
    seen = 0

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        if point.before:
            seen += 1
            if seen >= target:
                exit_now(name)
        result = real(*args, **kwargs)
        if not point.before:
            seen += 1
            if seen >= target:
                exit_now(name)
        return result

    setattr(owner, point.method, wrapper)


# --- byzantine: equivocation ------------------------------------------------------------


def conflicting(
    msg: ProposalMsg | VoteMsg, key: PrivateKey, chain_id: str, executor: Executor
) -> ProposalMsg | VoteMsg:
    """A second, conflicting signed version of ``msg`` (same height, round and step)."""
    from ledger.votes import NIL, Proposal, Vote
    from node.wire import VoteMsg

    if isinstance(msg, VoteMsg):
        v = msg.vote
        other = NIL if not v.is_nil else bytes(32)
        return VoteMsg(Vote.create(key, chain_id, v.type, v.height, v.round, other))
    from node.wire import ProposalMsg

    p, block = msg.proposal, msg.block
    alt = executor.build_block(
        block.txs[:-1] if block.txs else (),
        block.header.time_ms + 1,
        block.header.proposer,
        block.last_cert,
    ).block
    proposal = Proposal.create(key, chain_id, p.height, p.round, alt.hash, p.valid_round)
    return ProposalMsg(proposal, alt)


def install_equivocation() -> None:
    """Replace ``Gossip.broadcast_consensus``: each half of the peers gets its own version."""
    from node.gossip import Gossip
    from node.wire import encode_message

    real = Gossip.broadcast_consensus  # AttributeError: the send path moved; fix this
    announced = False

    @functools.wraps(real)
    def equivocate(self: Gossip, msg: ProposalMsg | VoteMsg) -> None:
        nonlocal announced
        self.mark_seen(encode_message(msg))
        links = self.host.peers
        twin = conflicting(msg, links.key, self.genesis.chain_id, self.host.driver.executor)
        peers = sorted(links.peers.values(), key=lambda p: p.key)
        for i, peer in enumerate(peers):
            links.send(peer, msg if i % 2 == 0 else twin)
        if not announced and peers:
            announced = True
            sys.stderr.write("byzantine: equivocating\n")
            sys.stderr.flush()

    Gossip.broadcast_consensus = equivocate  # type: ignore[method-assign]


# --- byzantine: withheld proposals ------------------------------------------------------


def install_withholding() -> None:
    """Replace ``ConsensusDriver._broadcast`` and ``Gossip.announce``: own proposals and
    the bodies announced ahead of them are never sent; votes are."""
    from ledger.votes import Proposal
    from node.driver import ConsensusDriver
    from node.gossip import Gossip

    real = ConsensusDriver._broadcast  # AttributeError: the send path moved; fix this
    Gossip.announce  # noqa: B018 -- the same for the announcing path
    announced = False

    @functools.wraps(real)
    def withhold(self: ConsensusDriver, message: Any) -> None:
        nonlocal announced
        if not isinstance(message, Proposal):
            real(self, message)
        elif not announced:
            announced = True
            sys.stderr.write("byzantine: withholding proposals\n")
            sys.stderr.flush()

    async def announce_nothing(self: Gossip, msg: Any) -> None:
        return None

    ConsensusDriver._broadcast = withhold  # type: ignore[method-assign]
    Gossip.announce = announce_nothing  # type: ignore[method-assign]


def install(faults: Faults) -> None:
    if faults.crash_at is not None:
        install_crash_point(faults.crash_at)
    if faults.byzantine == "equivocate":
        install_equivocation()
    elif faults.byzantine == "withhold":
        install_withholding()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        raise SystemExit("usage: python -m tests.e2e.launcher [FAULTS] -- CITYLEDGER_ARGS")
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.launcher")
    parser.add_argument("--crash-at", default=None, help="POINT[:N]: " + ", ".join(CRASH_POINTS))
    parser.add_argument("--byzantine", default=None, choices=BYZANTINE_MODES)
    opts = parser.parse_args(args[:split])
    install(Faults(opts.crash_at, opts.byzantine))
    from cli.main import main as cityledger

    sys.argv = ["cityledger", *args[split + 1 :]]
    cityledger()


if __name__ == "__main__":
    main()
