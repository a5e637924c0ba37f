"""A simulated node: the real consensus core behind a simulated execution layer.

The node carries out the core's effects — broadcasts go through the simulated
network, timeouts through the mock clock, getValue()/valid(v) are answered by the
simulated block store either at once (synchronously) or after a delay, a commit is
stored and answered with ``BlockCommitted`` — and adds what a real node adds
around the core: anti-entropy gossip of the current height's messages (a node
pulls from a random peer what the peer has and it lacks) and block sync (a node
that hears of a higher height fetches committed blocks with their certificates
from a peer, checks them, and jumps).

Like a real node's driver, it awaits the round-0 proposal of a validator it has not
heard for a few heights, or whose last turns brought no proposal, only briefly
(:class:`node.silence.SilenceWatch`: a quarter of the timeout, at most 250 ms), so the
seeds check safety and liveness with those shorter waits too.

Its durable state is its committed chain and its signer's store; a crash loses
everything else (the silence watch included). Byzantine behaviours are variations of
:meth:`SimNode.broadcast`, :meth:`SimNode.build_value` and gossip serving.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ledger.storage import MemoryStore
from ledger.validators import ValidatorSet
from ledger.votes import NIL, Proposal, Vote
from node.consensus.core import ConsensusCore
from node.consensus.effects import (
    Broadcast,
    Commit,
    Effect,
    EvidenceFound,
    RequestValidation,
    RequestValue,
    ScheduleTimeout,
    SignRefused,
    SyncNeeded,
)
from node.consensus.evidence import EvidencePool
from node.consensus.types import ConsensusMessage, Step
from node.silence import SilenceWatch
from tests.sim.app import Chain
from tests.sim.checker import RecordingSigner
from tests.sim.fixtures import CHAIN_ID, KEYS

if TYPE_CHECKING:
    from tests.sim.world import World

# Byzantine behaviours (twins and amnesia are set up by the world, not here).
EQUIVOCATE = "equivocating-proposer"
DOUBLE_VOTE = "double-voter"
WITHHOLD = "withholder"
# Votes at every height and never sends a proposal. Not drawn by the seeded scenarios
# (adding it to their draw would change every seed's scenario): tests/sim/test_silence_sim.py.
WITHHOLD_PROPOSALS = "proposal-withholder"
INVALID = "invalid-proposer"
AMNESIA = "amnesia"
TWIN = "twin"

GOSSIP_BATCH = 64
SYNC_BATCH = 20


class SimNode:
    def __init__(self, world: World, node_id: int, index: int, name: str, behaviour: str | None):
        self.world = world
        self.id = node_id
        self.index = index
        self.name = name
        self.key = KEYS[index]
        self.behaviour = behaviour
        self.store = MemoryStore()  # the signer's durable state
        self.chain: Chain = []
        self.core: ConsensusCore | None = None
        self.silence = SilenceWatch()
        self.cut_short = 0  # round-0 waits the watch cut short, across restarts
        self.up = False
        self.incarnation = 0
        self.peers: list[int] = []
        self.sync_target = 0
        self.sync_pending = False
        self.crash_mid_event = False
        self.pending: set[int] = set()  # the mempool: lost in a crash
        self.done_txs: set[int] = set()  # carried by this node's committed blocks
        # removed from the set from this height on: keeps running (and voting) on its old set
        self.removed_at = world.valsets.removed_at(self.key.public_key)
        rng = world.rng
        self.validate_now = rng.random() < 0.5
        self.value_now = rng.random() < 0.5

    # --- lifecycle ------------------------------------------------------------------------

    def boot(self, wipe_signer: bool = False) -> None:
        world = self.world
        if wipe_signer:
            self.store = MemoryStore()
        self.up = True
        self.incarnation += 1
        self.sync_pending = False
        self.pending = set()
        self.silence = SilenceWatch()
        signer = RecordingSigner(self.key, CHAIN_ID, self.store, world.recorder)
        height = len(self.chain) + 1
        self.core = ConsensusCore(
            chain_id=CHAIN_ID,
            validators=self.set_at(height),
            upcoming=self.set_at(height + 1),
            height=height,
            signer=signer,
            verifier=world.verifier,
            timeouts=world.config.timeouts,
            evidence=EvidencePool(max_items=64),
        )
        world.trace.add(world.sched.now, self.name, "boot" + (" (signer wiped)" * wipe_signer))
        self.run(self.core.start())
        self.world.sched.after(self.gossip_interval(), self.gossip_tick, self.incarnation)

    def set_at(self, height: int) -> ValidatorSet:
        """The set this node believes votes on ``height``: the schedule's, except that a
        removed validator never learns the sets without it."""
        if self.removed_at is not None:
            height = min(height, self.removed_at - 1)
        return self.world.valsets.at(height)

    def committed(self, height: int) -> list[Effect]:
        assert self.core is not None
        return self.core.on_block_committed(
            height, self.set_at(height + 1), self.set_at(height + 2)
        )

    def crash(self) -> None:
        if self.up:
            self.up = False
            self.core = None
            self.world.trace.add(self.world.sched.now, self.name, "crash")

    def describe(self) -> str:
        return self.core.describe() if self.core else "down"

    # --- events in --------------------------------------------------------------------------

    def deliver(self, message: ConsensusMessage) -> None:
        if self.core is None:
            return
        self.world.trace.add(self.world.sched.now, self.name, "recv", message)
        core = self.core
        sender = message.proposer if isinstance(message, Proposal) else message.validator
        self.silence.heard(sender, message.height, core.height, core.validators)
        self.run(core.on_message(message))

    def receive_txs(self, txs: frozenset[int]) -> None:
        """Transactions from a client or a peer: new ones are kept, passed on to every
        peer, and start a height that waits for something to commit."""
        new = txs - self.pending - self.done_txs
        if self.core is None or not new:
            return
        self.pending |= new
        for peer in self.peers:
            self.world.net.send(self.id, peer, self.world.nodes[peer].receive_txs, frozenset(new))
        if self.core.waiting:
            self.run(self.core.on_txs_available(self.core.height))

    def on_timer(self, incarnation: int, height: int, round_: int, step: Step) -> None:
        if self.core is None or incarnation != self.incarnation:
            return
        if (height, round_) == (self.core.height, self.core.round):
            self.world.trace.add(self.world.sched.now, self.name, f"timeout {step.name} r{round_}")
        self.run(self.core.on_timeout(height, round_, step))

    def answer_value(self, incarnation: int, height: int, round_: int) -> None:
        if self.core is None or incarnation != self.incarnation:
            return
        self.run(self.core.on_value_ready(height, round_, self.build_value(height, round_)))

    def answer_validation(self, incarnation: int, height: int, block_hash: bytes) -> None:
        if self.core is None or incarnation != self.incarnation:
            return
        valid = self.world.blocks.check(block_hash, height, self.chain)
        self.run(self.core.on_validation_result(height, block_hash, valid))

    # --- effects out -----------------------------------------------------------------------

    def run(self, effects: list[Effect]) -> None:
        """Carry out effects in order; answers that come at once are queued behind them."""
        if self.crash_mid_event:  # crash after the core acted (and signed), before sending
            self.crash_mid_event = False
            self.world.trace.add(self.world.sched.now, self.name, f"lost {len(effects)} effects")
            self.crash()
            return
        world = self.world
        queue = deque(effects)
        while queue and self.core is not None:
            effect = queue.popleft()
            if isinstance(effect, Broadcast):
                self.broadcast(effect.message)
            elif isinstance(effect, ScheduleTimeout):
                if effect.step == Step.WAIT and self.pending:
                    queue.extend(self.core.on_txs_available(effect.height))
                    continue
                world.sched.after(
                    self.timeout_ms(effect),
                    self.on_timer,
                    self.incarnation,
                    effect.height,
                    effect.round,
                    effect.step,
                )
            elif isinstance(effect, RequestValue):
                if self.value_now:
                    value = self.build_value(effect.height, effect.round)
                    queue.extend(self.core.on_value_ready(effect.height, effect.round, value))
                else:
                    delay = world.rng.randint(1, 60)
                    world.sched.after(
                        delay, self.answer_value, self.incarnation, effect.height, effect.round
                    )
            elif isinstance(effect, RequestValidation):
                if self.validate_now:
                    valid = world.blocks.check(effect.block_hash, effect.height, self.chain)
                    queue.extend(
                        self.core.on_validation_result(effect.height, effect.block_hash, valid)
                    )
                else:
                    delay = world.rng.randint(1, 60)
                    world.sched.after(
                        delay,
                        self.answer_validation,
                        self.incarnation,
                        effect.height,
                        effect.block_hash,
                    )
            elif isinstance(effect, Commit):
                queue.extend(self.commit(effect))
            elif isinstance(effect, EvidenceFound):
                world.recorder.evidence.append((self.name, effect.evidence))
                world.trace.add(world.sched.now, self.name, f"evidence {effect.evidence.kind}")
            elif isinstance(effect, SyncNeeded):
                self.want_sync(effect.height)
            elif isinstance(effect, SignRefused):
                world.trace.add(world.sched.now, self.name, f"signer refused: {effect.error}")
        self.note_round0()

    def note_round0(self) -> None:
        """When this node was first at its core's height, and when it first ran that
        height's round 0 (out of the idle wait): what tests/sim/idle.py's prompt check
        reads when a transaction's height needed more than one round."""
        core, world = self.core, self.world
        if core is None or world.config.idle is None:  # only idle seeds are checked so
            return
        at = (self.id, core.height)
        world.entered_at.setdefault(at, world.sched.now)
        if core.step != Step.WAIT:
            world.round0_at.setdefault(at, world.sched.now)

    def timeout_ms(self, effect: ScheduleTimeout) -> int:
        """As node/driver.py's ``_delay_ms``: another validator's round-0 proposal is
        awaited briefly when the silence watch says so."""
        assert self.core is not None
        if effect.step != Step.PROPOSE:
            return effect.duration_ms
        wait = self.silence.wait_ms(self.core, effect.height, effect.round, effect.duration_ms)
        self.cut_short += wait < effect.duration_ms
        return wait

    def commit(self, effect: Commit) -> list[Effect]:
        assert self.core is not None
        assert effect.height == len(self.chain) + 1, "the core decided a height out of order"
        core = self.core
        self.silence.decided(core, effect.height, effect.round)  # as node/driver.py's _commit
        self.chain.append((effect.block_hash, effect.certificate))
        self.note_txs(effect.block_hash)
        self.world.on_commit(
            self, effect.height, effect.block_hash, synced=False, round_=effect.round
        )
        effects = self.committed(effect.height)
        self.silence.forget_all_but(core.validators)
        return effects

    def note_txs(self, block_hash: bytes) -> None:
        """A committed block's transactions leave the mempool."""
        txs = self.world.blocks.blocks[block_hash].txs
        self.done_txs |= txs
        self.pending -= txs

    def build_value(self, height: int, round_: int) -> bytes:
        block = self.world.blocks.build(
            height,
            round_,
            self.key.public_key,
            self.chain,
            valid=self.behaviour != INVALID,
            txs=frozenset(self.pending),
        )
        return block.hash

    def broadcast(self, message: ConsensusMessage) -> None:
        world = self.world
        if isinstance(message, Proposal):
            world.blocks.proposed.add((message.height, message.block_hash))
            if self.id in world.honest_ids:
                block = world.blocks.blocks.get(message.block_hash)
                for tx in () if block is None else block.txs:
                    world.tx_proposed_at.setdefault(tx, world.sched.now)
        world.trace.add(world.sched.now, self.name, "send", message)
        behaviour = self.behaviour
        if behaviour == EQUIVOCATE and isinstance(message, Proposal):
            self.send_split(message, self.alternative_proposal(message))
        elif behaviour == DOUBLE_VOTE and isinstance(message, Vote):
            alternative = self.alternative_vote(message)
            if alternative is None:
                self.send_all(message)
            else:
                self.send_split(message, alternative)
        elif behaviour == WITHHOLD_PROPOSALS and isinstance(message, Proposal):
            return
        elif behaviour == WITHHOLD and isinstance(message, Vote):
            for peer in self.peers:
                if world.rng.random() < 0.3:
                    world.send(self.id, peer, message)
        else:
            self.send_all(message)

    def send_all(self, message: ConsensusMessage) -> None:
        for peer in self.peers:
            self.world.send(self.id, peer, message)

    def send_split(self, first: ConsensusMessage, second: ConsensusMessage) -> None:
        """Byzantine: one version to some peers, the other to the rest."""
        rng = self.world.rng
        for peer in self.peers:
            self.world.send(self.id, peer, first if rng.random() < 0.5 else second)

    def alternative_proposal(self, p: Proposal) -> Proposal:
        block = self.world.blocks.build(
            p.height, p.round, self.key.public_key, self.chain, variant=1 + p.round
        )
        self.world.blocks.proposed.add((p.height, block.hash))
        self.world.trace.add(self.world.sched.now, self.name, "equivocates", block.hash)
        return Proposal.create(self.key, CHAIN_ID, p.height, p.round, block.hash, p.valid_round)

    def alternative_vote(self, vote: Vote) -> Vote | None:
        if vote.block_hash != NIL:
            other = NIL
        else:
            known = self.world.blocks.by_height.get(vote.height, [])
            if not known:
                return None
            other = self.world.rng.choice(known)
        self.world.trace.add(self.world.sched.now, self.name, "double-votes", other)
        return Vote.create(self.key, CHAIN_ID, vote.type, vote.height, vote.round, other)

    # --- gossip and sync -------------------------------------------------------------------

    def gossip_interval(self) -> int:
        return self.world.config.gossip_ms + self.world.rng.randint(0, 50)

    def gossip_tick(self, incarnation: int) -> None:
        """Pull what a random peer has for our height and we lack."""
        if self.core is None or incarnation != self.incarnation:
            return
        world = self.world
        peer = world.nodes[world.rng.choice(self.peers)]
        world.net.send(self.id, peer.id, peer.serve_gossip, self.id)
        world.sched.after(self.gossip_interval(), self.gossip_tick, incarnation)

    def serve_gossip(self, requester_id: int) -> None:
        requester = self.world.nodes[requester_id]
        if self.core is None or requester.core is None or self.behaviour == WITHHOLD:
            return
        missing_txs = self.pending - requester.pending - requester.done_txs
        if missing_txs:
            self.world.net.send(self.id, requester_id, requester.receive_txs, missing_txs)
        if self.core.height > requester.core.height:
            self.world.net.send(self.id, requester_id, requester.want_sync, self.core.height)
            return
        if self.core.height != requester.core.height:
            return
        have = set(requester.core.known_messages())
        missing = [m for m in self.core.known_messages() if m not in have]
        for message in missing[:GOSSIP_BATCH]:
            if (
                isinstance(message, Proposal)
                and self.behaviour == WITHHOLD_PROPOSALS
                and message.proposer == self.key.public_key
            ):
                continue  # its own are never sent, pulled or not
            if isinstance(message, Proposal):
                # A proposal in a core's log was accepted from its round's proposer, or
                # signed by this node before a crash lost its broadcast (a restarted core
                # puts it back): proposed either way, as the validity check counts.
                self.world.blocks.proposed.add((message.height, message.block_hash))
            self.world.send(self.id, requester_id, message)

    def want_sync(self, height: int) -> None:
        if self.core is None:
            return
        self.sync_target = max(self.sync_target, height)
        if not self.sync_pending and len(self.chain) < self.sync_target - 1:
            self.sync_pending = True
            self.world.sched.after(self.world.config.sync_ms, self.sync_tick, self.incarnation)

    def sync_tick(self, incarnation: int) -> None:
        """Still behind after the grace period: fetch blocks and certificates from a peer."""
        if self.core is None or incarnation != self.incarnation:
            return
        self.sync_pending = False
        if len(self.chain) >= self.sync_target - 1:
            return
        world = self.world
        have = len(self.chain)
        candidates = [
            p
            for p in self.peers
            if world.nodes[p].up
            and len(world.nodes[p].chain) > have
            and world.net.linked(self.id, p)
        ]
        if not candidates:
            self.want_sync(self.sync_target)
            return
        peer = world.nodes[world.rng.choice(candidates)]
        entries = peer.chain[have : have + SYNC_BATCH]
        delay = world.net.transmit(peer.id, self.id)
        if delay is None:
            self.want_sync(self.sync_target)
            return
        world.sched.after(delay, self.on_sync_reply, incarnation, have + 1, list(entries))

    def on_sync_reply(self, incarnation: int, first: int, entries: Chain) -> None:
        if self.core is None or incarnation != self.incarnation:
            return
        world = self.world
        for height, (block_hash, cert) in enumerate(entries, start=first):
            if height != len(self.chain) + 1:
                continue
            if not (
                world.blocks.cert_ok(cert, height, block_hash)
                and world.blocks.check(block_hash, height, self.chain)
            ):
                world.trace.add(world.sched.now, self.name, f"sync: bad block at h{height}")
                break
            self.chain.append((block_hash, cert))
            self.note_txs(block_hash)
            world.on_commit(self, height, block_hash, synced=True)
            self.run(self.committed(height))
            if self.core is None:
                return
        self.want_sync(self.sync_target)
