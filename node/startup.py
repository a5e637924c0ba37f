"""When a validator may start consensus, and what it restores as it starts.

A validator signs nothing before it has caught up: a node that lost its store must not
propose or vote at heights the network decided long ago (the signer state file refuses
those anyway). It first hears the heights of validators with f+1 power (at most
``STARTUP_STATUS_WAIT_S``), then syncs up to the height they claim (``Syncer.target``),
unless catch-up makes no progress for ``STARTUP_STALL_S``.

:func:`start_decision` is that rule as a pure function (inputs to a decision);
:func:`wait_until_caught_up` applies it every 0.1 s. Then :func:`raise_reset_floor` and
:func:`restore_locked_block` prepare the signer and the driver; :func:`start_consensus`
does it all for a node.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Protocol

from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.validators import ValidatorSet
from node import parts
from node.chain import ChainStore
from node.config import NodeConfig
from node.consensus.core import ConsensusCore
from node.consensus.evidence import EvidencePool
from node.consensus.signer import Signer
from node.driver import ConsensusDriver
from node.gossip import Gossip
from node.sync import Syncer

log = logging.getLogger("cityledger.node")
STARTUP_STATUS_WAIT_S = 10.0  # at most this long for validators with f+1 power to report
STARTUP_STALL_S = 15.0  # start anyway when catch-up makes no progress for this long
POLL_S = 0.1


class StartDecision(enum.Enum):
    WAIT = "wait"
    CAUGHT_UP = "caught up"  # start: at the height the validators claim
    STALLED = "stalled"  # start anyway: catch-up made no progress for STARTUP_STALL_S


def power_needed(validators: ValidatorSet, own_key: bytes) -> int:
    """The power of the validators whose heights a validator waits to hear: f+1, or all
    the others' when they have less."""
    return min(validators.skip_power, validators.total_power - validators.power_of(own_key))


def start_decision(
    *, heard: int, need: int, waited_s: float, head: int, target: int, stalled_s: float
) -> StartDecision:
    """Whether to start consensus now.

    ``heard``: the power of the validators that told their height (``need`` is enough);
    ``waited_s``: since the wait began; ``head``: our committed height; ``target``: the
    height to catch up to (``Syncer.target``); ``stalled_s``: since ``head`` last moved.
    """
    if heard < need and waited_s < STARTUP_STATUS_WAIT_S:
        return StartDecision.WAIT
    if head + 1 >= target:
        return StartDecision.CAUGHT_UP
    if stalled_s >= STARTUP_STALL_S:
        return StartDecision.STALLED
    return StartDecision.WAIT


async def wait_until_caught_up(
    chain: ChainStore,
    syncer: Syncer,
    status_from: set[bytes],
    validators: ValidatorSet,
    own_key: bytes,
) -> int:
    """Wait until :func:`start_decision` says start; the power heard from by then.
    ``status_from``: the keys of the peers that told us their height (it grows)."""
    loop = asyncio.get_running_loop()
    need = power_needed(validators, own_key)
    keys = {v.public_key for v in validators.validators}
    started = last_progress = loop.time()
    last_head = chain.head().height
    while True:
        now = loop.time()
        head = chain.head().height
        if head != last_head:
            last_head, last_progress = head, now
        heard = validators.power_of_set(status_from & keys)
        target = syncer.target()
        decision = start_decision(
            heard=heard,
            need=need,
            waited_s=now - started,
            head=head,
            target=target,
            stalled_s=now - last_progress,
        )
        if decision is StartDecision.STALLED:
            log.warning(
                "catch-up stalled at height %d of %d; starting consensus anyway", head, target
            )
        if decision is not StartDecision.WAIT:
            return heard
        await asyncio.sleep(POLL_S)


def raise_reset_floor(signer: Signer, head: int, target: int) -> None:
    """After ``--reset-signer-state``: sign nothing up to the height we are at (the
    higher of our head and the target), nor at the next one."""
    if not signer.floor_pending:
        return
    floor = max(head, target) + 1
    signer.raise_floor(floor)
    log.warning("signer state was reset: this validator signs nothing up to height %d", floor)


def restore_locked_block(signer: Signer, driver: ConsensusDriver, height: int) -> None:
    """The block the signer was locked on at ``height``: back among the driver's
    blocks, so that it can be proposed again after a crash."""
    lock = signer.lock(height)
    raw = signer.lock_block(height)
    if lock is None or raw is None:
        return
    try:
        block = Block.decode(raw)
    except LedgerError as exc:
        log.warning("the locked block kept by the signer does not decode: %s", exc)
        return
    if block.hash == lock.block_hash:
        driver.blocks[block.hash] = block


class Starting(Protocol):
    """What :func:`start_consensus` reads and sets of the node (:class:`node.runtime.Node`)."""

    config: NodeConfig
    key: PrivateKey
    chain: ChainStore
    syncer: Syncer
    gossip: Gossip
    signer: Signer | None
    evidence_pool: EvidencePool
    driver: ConsensusDriver
    core: ConsensusCore
    consensus_started: bool


async def start_consensus(node: Starting) -> None:
    """Start signing only once caught up: a new core at the height after the head, the
    signer's reset floor raised and its locked block restored."""
    assert node.signer is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    chain = node.chain
    heard = await wait_until_caught_up(
        chain,
        node.syncer,
        node.gossip.status_from,
        chain.validators_at(chain.head().height + 1),
        node.key.public_key,
    )
    raise_reset_floor(node.signer, chain.head().height, node.syncer.target())
    node.core = parts.consensus_core(chain, node.signer, node.evidence_pool, node.config)
    node.driver.core = node.core
    restore_locked_block(node.signer, node.driver, node.core.height)
    log.info(
        "consensus starts at height %d after %.1f s (heard validators with power %d)",
        node.core.height,
        loop.time() - started,
        heard,
    )
    node.consensus_started = True
    node.driver.start()
