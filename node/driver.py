"""The consensus driver: runs the sans-IO core inside the node.

It feeds the core events (messages from peers, timers, the executor's answers)
and carries out the effects it returns: broadcast through the node's gossip,
timers on the event loop, block building and validation through the executor,
and commit. Nothing here decides anything about consensus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from ledger.block import Block
from ledger.errors import LedgerError, StorageError
from ledger.evidence import Evidence, describe_evidence
from ledger.votes import Proposal, Vote, VoteType
from node.consensus import effects as fx
from node.consensus import events as ev
from node.consensus.core import ConsensusCore
from node.consensus.timeouts import TimeoutConfig
from node.consensus.types import Step
from node.executor import ExecutedBlock, Executor, InvalidBlock
from node.height_phases import HeightPhases
from node.mempool import Mempool
from node.round_watch import RoundWatch
from node.silence import SilenceWatch
from node.speculation import Pending, Speculation
from node.wire import AnnounceMsg, ProposalMsg, VoteMsg, framed

log = logging.getLogger("cityledger.consensus")

# A block is sized so that building it (executing it as the proposer) takes at most this
# share of timeout_propose: a proposal that comes later than the timeout makes the round
# fail, and the next proposer would build as large a block again. Not less: each block
# costs every validator fixed work (the state tree's upper pages rewritten, votes, a
# synced write), so smaller blocks cost more per transaction — at 0.4 a loaded 4-node
# network built blocks of ~500 and committed 389-470 tx/s, at 0.8 blocks of 620-810 and
# 543-627 tx/s, with no more rounds per height (docs/performance.md, "Block size").
BLOCK_BUDGET_SHARE = 0.8
# And at most this share of the latency budget ([mempool] latency_budget_ms): a
# transaction waits for about two blocks (the one being built when it came, then its
# own), so a longer build is a longer wait for every transaction, whatever the
# validators' timeout would allow. 0.4 of 2 s is the 0.8 s that 0.8 of the old 1 s
# timeout_propose gave (networks founded today wait 2 s: docs/performance.md, "Rounds
# lost to a late proposal").
BUILD_SHARE_OF_LATENCY = 0.4
MIN_BLOCK_TXS = 50  # always offered, however slow execution looks
INITIAL_TX_COST_S = 0.001  # assumed execution time per transaction until measured
COST_SAMPLE_MIN_TXS = 20  # smaller blocks are mostly per-block overhead: not sampled
COST_WEIGHT = 0.3  # weight of the newest sample in the moving average
PROPOSAL_RESEND_TICKS = 5  # the own proposal goes out again every 5th re-send only
# With fewer transactions pending than a quarter of a block, the proposer waits until this
# long after the last commit for more: each block costs every node fixed work (votes,
# synced writes, roots), which blocks of a handful of transactions multiply. 0.25 s, not
# 0.1: at 250 tx/s offered, blocks of 92 instead of 45, 16 % less node CPU and 28 % fewer
# bytes written per transaction, p50 330 instead of 180 ms, p99 1.4-1.6 s instead of
# 1.2 (docs/performance.md, "Waiting for a fuller block"). It is capped at a quarter of
# timeout_propose (250 ms by default). "A block" is at most what admission lets wait.
# No wait when the node turned clients away during the last height: they are coming back
# at their turns whatever the proposer does, and waiting only left both cores half idle
# for a quarter of each height (six pairs at 3,500 offered: 1,216.8 against 1,149.2 tx/s
# on the means, higher in five; docs/performance.md, "No fill wait at saturation").
FILL_WAIT_S = 0.25
# The fill wait ends sooner when transactions stop coming: once none has arrived for this
# long, the block is built with what the pool holds. Clients turned away at saturation
# come back at their turns, let in together at a commit, and then nothing arrives for the
# rest of the height; the proposer waited out the whole 0.25 s with a pool that did not
# grow (logged: 222 transactions at 99 ms after the commit, 222 at 250 ms). Longer than
# the gaps of a steady stream (200 tx/s over four nodes arrives every few milliseconds;
# the bench's clients send every 50 ms), so a loaded network still fills its blocks
# (docs/performance.md, "The fill wait ends when arrivals stop").
FILL_GAP_S = 0.1


class ConsensusNetwork(Protocol):
    """Where the driver sends what consensus produces (the node's gossip)."""

    def broadcast_consensus(self, msg: ProposalMsg | VoteMsg) -> None:
        """Our own proposal or vote, to every peer."""
        ...

    async def announce(self, msg: AnnounceMsg) -> None:
        """Our block's body, before we execute it, to every validator (node/speculation.py);
        returns once it is on its way."""
        ...

    def evidence_found(self, evidence: Evidence) -> None:
        """A new equivocation the core found (and pooled), to every peer."""
        ...


class DriverHost(Protocol):
    """What the driver needs from the node around it."""

    def committed(self, block: Block, block_time_s: float) -> None:
        """Consensus committed ``block`` (receipts in ``last_committed``)."""
        ...

    def sync_needed(self, height: int) -> None:
        """A signed message shows ``height`` - 1 is committed: catch up if behind."""
        ...

    def store_failed(self, message: str) -> None:
        """A read or write of our own store failed in a timer or task."""
        ...

    def pending_evidence(self, height: int) -> Sequence[Evidence]:
        """The evidence a block we propose at ``height`` offers to commit."""
        ...


class ConsensusDriver:
    """Glue between :class:`ConsensusCore` and the node's executor, mempool and peers."""

    def __init__(
        self,
        core: ConsensusCore,
        executor: Executor,
        mempool: Mempool,
        network: ConsensusNetwork,
        host: DriverHost,
        *,
        clock: Callable[[], float] = time.time,
        empty_block_wait_s: float = 0.5,
        timer: Callable[[], float] = time.perf_counter,
        fill_wait_s: float = FILL_WAIT_S,
        fill_gap_s: float = FILL_GAP_S,
        speculate: bool = False,
    ) -> None:
        """``speculate``: announce our blocks' bodies, and execute the proposer's ahead
        (node/speculation.py)."""
        self.core = core
        self.network = network
        self.host = host
        self.executor = executor
        self.mempool = mempool
        self.clock = clock
        self.empty_block_wait_s = empty_block_wait_s
        self.blocks: OrderedDict[bytes, Block] = OrderedDict()  # proposed blocks by hash
        self.own_messages: list[ProposalMsg | VoteMsg] = []  # re-sent until the height ends
        self.tx_arrived = asyncio.Event()
        self.rounds_at_commit: int = 0
        self.timer = timer
        self.fill_wait_s = fill_wait_s
        self.fill_gap_s = fill_gap_s
        self.tx_cost_s = INITIAL_TX_COST_S  # moving average of build time per tx
        self.last_committed: ExecutedBlock | None = None  # receipts for host.committed
        self._resends = 0
        self._height_started = self.clock()
        self._last_arrival = self._height_started  # when transactions last reached the pool
        self._timers: set[asyncio.TimerHandle] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self.rounds = RoundWatch()  # logs why a height needed another round
        self.silence = SilenceWatch()  # validators not heard lately: their round 0 cut short
        self.phases = HeightPhases(self.timer())  # where a height's time goes (metrics)
        self.last_phases: dict[str, float] | None = None  # of the last height, for host.committed
        self.last_stalls: list[tuple[float, float]] = []  # its rounds without a proposal
        # announced bodies executed ahead of their proposals (node/speculation.py)
        self.speculation = Speculation(executor, Pending(mempool.pick, self.proposal_awaited))
        self.speculate = speculate

    # --- feeding the core ---------------------------------------------------------------

    def start(self) -> None:
        self._run(self.core.start())

    def on_proposal(self, msg: ProposalMsg) -> list[fx.Effect]:
        """Hand the proposal to the core; its block is kept only if the core kept the
        proposal (this height's state, or the next-height buffer), so forged or refused
        proposals cannot push the blocks of real ones out of ``blocks``."""
        if msg.block.hash != msg.proposal.block_hash:
            return []
        self._heard(msg.proposal.proposer, msg.proposal.height)
        block_hash = msg.block.hash
        arrived = self.timer()  # the core validates and prevotes while it handles it
        known = block_hash in self.blocks
        self.blocks[block_hash] = msg.block  # the core may ask to validate it right away
        try:
            effects = self._run(self.core.handle(ev.MessageReceived(msg.proposal)))
        finally:
            p = msg.proposal
            kept = self.core.holds(p) if p.height == self.core.height else self.core.buffered(p)
            if not known and not kept and self.blocks.get(block_hash) is msg.block:
                del self.blocks[block_hash]
            if kept and p.height == self.core.height:
                if p.round == 0:
                    self.phases.mark(p.height, "proposal", arrived)
                window_s = self._propose_window_s(p.round)
                age_s = self.clock() - msg.block.header.time_ms / 1000
                self.rounds.proposal_arrived(
                    p.height, p.round, p.proposer, window_s, self.timer(), block_age_s=age_s
                )
        while len(self.blocks) > 64:
            self.blocks.popitem(last=False)
        return effects

    def on_vote(self, vote: Vote) -> list[fx.Effect]:
        self._heard(vote.validator, vote.height)
        return self._run(self.core.handle(ev.MessageReceived(vote)))

    def _heard(self, validator: bytes, height: int) -> None:
        core = self.core
        self.silence.heard(validator, height, core.height, core.validators)

    def on_announce(self, sender: bytes, msg: AnnounceMsg) -> None:
        """A block body announced on ``sender``'s link (node/speculation.py): executed
        now if it is this round's proposer's, kept if it is for the height after ours."""
        core = self.core
        if not self.speculate or core.public_key is None or sender == core.public_key:
            return  # an observer votes on nothing; our own body we execute anyway
        if msg.height == core.height + 1:
            self.speculation.hold(sender, msg)
        elif (msg.height, msg.round) == (core.height, core.round):
            self._speculate(sender, msg)

    def proposal_awaited(self, height: int, round_: int) -> bool:
        """The core is at ``height`` and not past ``round_``, and that round's proposal
        has not come."""
        core = self.core
        if core.height != height or core.round > round_:
            return False
        state = core.round_state(round_)
        return state is None or state.proposal is None

    def _speculate(self, sender: bytes, msg: AnnounceMsg) -> None:
        if self.speculation.take(sender, msg):
            self._spawn(self.speculation.run(sender, msg))

    def txs_arrived(self) -> None:
        """Transactions (or evidence) arrived: wake a proposer filling its block, and
        start a height that waits for something to commit."""
        self._last_arrival = self.clock()
        self.tx_arrived.set()
        self.speculation.arrived.set()
        core = self.core
        if core.waiting and self._has_work(core.height):
            self._run(core.handle(ev.TxsAvailable(core.height)))

    def _has_work(self, height: int) -> bool:
        """Something to commit at ``height``: a ready transaction (one behind a nonce gap
        cannot go into a block, so it starts nothing), or evidence not committed yet."""
        return len(self.mempool) > self.mempool.gapped or bool(self.host.pending_evidence(height))

    def awaiting_proposal(self) -> bool:
        """No proposal has come for the current round of this height (a height whose
        proposer waits idle, or one that has not built yet)."""
        state = self.core.round_state(self.core.round)
        return state is None or state.proposal is None

    def awaiting_proposal_of(self, height: int, round_: int) -> bool:
        """The core is at ``height``/``round_``, still waiting for its proposal."""
        core = self.core
        at = (core.height, core.round, core.step) == (height, round_, Step.PROPOSE)
        return at and self.awaiting_proposal()

    def on_synced(self, height: int) -> None:
        """A block was committed by catch-up: move the core past it."""
        self._cancel_timers()
        self.own_messages.clear()
        self._resends = 0
        self.rounds.committed(height, 0, self.timer())
        self.phases.passed(height, self.timer())
        self._run(self.core.handle(self._committed(height)))
        self._release_announce()

    def resend_own(self) -> None:
        """Re-send this height's signed messages (identical bytes: safe and idempotent).

        Our own proposals and votes, plus every vote the core holds for this height —
        including the ones a restarted core restored from its signer, which were signed
        before the crash and may never have left the node. Without this, a network
        restarted as a whole can wait forever for votes nobody re-sends.

        Our proposal carries a whole block: it goes out again only every
        ``PROPOSAL_RESEND_TICKS``-th call of a height (peers that connect later get it
        from ``Gossip.on_connect``; a peer that lost it meanwhile also gets it from
        every peer that relays it).
        """
        self._resends += 1
        with_proposal = self._resends % PROPOSAL_RESEND_TICKS == 0
        sent: set[bytes] = set()
        for msg in self.own_messages:
            if isinstance(msg, VoteMsg):
                sent.add(msg.vote.signature)
            elif not with_proposal:
                continue
            self.network.broadcast_consensus(msg)
        for message in self.core.known_messages():
            if isinstance(message, Vote) and message.signature not in sent:
                self.network.broadcast_consensus(VoteMsg(message))

    # --- carrying out effects -----------------------------------------------------------

    def _run(self, effects: list[fx.Effect]) -> list[fx.Effect]:
        queue = list(effects)
        done: list[fx.Effect] = []
        while queue:
            effect = queue.pop(0)
            done.append(effect)
            queue.extend(self._apply(effect))
        return done

    def _apply(self, effect: fx.Effect) -> list[fx.Effect]:
        if isinstance(effect, fx.Broadcast):
            self._broadcast(effect.message)
        elif isinstance(effect, fx.ScheduleTimeout):
            if effect.step == Step.WAIT and self._has_work(effect.height):
                return self.core.handle(ev.TxsAvailable(effect.height))  # no need to wait
            if effect.step == Step.PROPOSE:
                self.rounds.entered(effect.height, effect.round, self.timer())
            self._schedule(effect)
        elif isinstance(effect, fx.RequestValue):
            self.rounds.entered(effect.height, effect.round, self.timer())
            self._spawn(self._build_value(effect.height, effect.round))
        elif isinstance(effect, fx.RequestValidation):
            return self._validate(effect)
        elif isinstance(effect, fx.Commit):
            return self._commit(effect)
        elif isinstance(effect, fx.EvidenceFound):
            log.warning("equivocation evidence: %s", describe_evidence(effect.evidence))
            self.network.evidence_found(effect.evidence)
        elif isinstance(effect, fx.SignRefused):
            log.error("signer refused to sign: %s", effect.error)
        elif isinstance(effect, fx.SyncNeeded):
            self.host.sync_needed(effect.height)
        elif isinstance(effect, fx.Rejected):
            log.debug("rejected %s: %s", type(effect.message).__name__, effect.error)
        return []

    def _broadcast(self, message: Proposal | Vote) -> None:
        if isinstance(message, Proposal):
            block = self.blocks.get(message.block_hash)
            if block is None:
                log.error("no block for our own proposal %s", message.block_hash.hex()[:16])
                return
            msg: ProposalMsg | VoteMsg = framed(ProposalMsg(message, block))
        else:
            msg = framed(VoteMsg(message))
        if message.round == 0:
            self.phases.mark(message.height, _phase_mark(message), self.timer())
        self.own_messages.append(msg)
        self.network.broadcast_consensus(msg)

    def _schedule(self, t: fx.ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        event = ev.TimeoutFired(t.height, t.round, t.step)
        delay_s = self._delay_ms(t) / 1000
        handle = loop.call_later(delay_s, self._fire, event, loop.time() + delay_s)
        self._timers.add(handle)

    def _delay_ms(self, t: fx.ScheduleTimeout) -> int:
        """The timer's length: as asked, except that the idle heartbeat counts from the
        head block's time (a node restarted long after it does not wait a whole
        interval more, and every validator's heartbeat falls due at about one time),
        and that round 0 of a validator not heard from lately waits for its proposal
        only briefly (node/silence.py)."""
        if t.step == Step.PROPOSE:
            return self.silence.wait_ms(self.core, t.height, t.round, t.duration_ms)
        if t.step != Step.WAIT:
            return t.duration_ms
        due_ms = self.executor.chain.head().time_ms + t.duration_ms
        return max(0, min(t.duration_ms, due_ms - int(self.clock() * 1000)))

    def _fire(self, event: ev.TimeoutFired, due: float | None = None) -> None:
        """A timer ran out (``due``: when it should have, on the loop's clock)."""
        if event.step == Step.PROPOSE and self.awaiting_proposal_of(event.height, event.round):
            late_s = 0.0 if due is None else asyncio.get_running_loop().time() - due
            proposer = self.core.validators.proposer(event.height, event.round)
            cut = event.round == 0 and self.silence.cut_short(proposer, event.height)
            self.rounds.timed_out(
                event.height, event.round, proposer, late_s, self.timer(), expected=cut
            )
        try:
            self._run(self.core.handle(event))
        except StorageError as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: StorageError) -> None:
        self.host.store_failed(f"in consensus: {exc}")

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    async def _build_value(self, height: int, round_: int) -> None:
        """getValue(): wait briefly for transactions, then build a block on our head."""
        round_started = self.clock()  # the validators' timeout_propose runs from about now
        if len(self.mempool) == 0 and self.empty_block_wait_s > 0:
            self.tx_arrived.clear()
            try:
                async with asyncio.timeout(self.empty_block_wait_s):
                    await self.tx_arrived.wait()
            except TimeoutError:
                pass
        params = self.executor.genesis.consensus
        limit = self.block_limit()
        now = self.clock()
        longest = now + params.timeout_propose_ms / 4000
        fill_until = (
            self._height_started + self.fill_wait_s
            if len(self.mempool) < self._fill_target(limit) // 4
            and not self.mempool.budget.turned_away_last_height
            else now
        )
        # min_block_interval_ms: after the previous block's time (0 by default)
        interval_until = (self.executor.chain.head().time_ms + params.min_block_interval_ms) / 1000
        if max(fill_until, interval_until) > now:
            await self._fill(min(fill_until, longest), min(interval_until, longest))
        if self.executor.chain.head().height + 1 != height:
            return  # the height moved on while we waited
        limit = self.block_limit(round_, self.clock() - round_started)
        txs = self.mempool.reap(limit, params.max_block_bytes)
        last_cert = self.executor.chain.certificate(height - 1) if height > 1 else None
        evidence = self.host.pending_evidence(height)
        started = self.timer()
        time_ms = self.executor.block_time_ms(int(self.clock() * 1000))
        if self.speculate and txs and not evidence:  # with evidence (rare): not announced
            hashes = tuple(tx.hash for tx in txs)
            await self.network.announce(AnnounceMsg(height, round_, time_ms, last_cert, hashes))
        executed = self.executor.build_block(txs, time_ms, self.core_key(), last_cert, evidence)
        built_s = self.timer() - started
        self._observe_cost(len(txs), built_s)
        if round_ == 0:
            self.phases.built(height, started, built_s)
        self.rounds.own_proposal_ready(
            height,
            round_,
            len(txs),
            ready_s=self.clock() - round_started,
            built_s=built_s,
            tx_cost_s=self.tx_cost_s,
            window_s=self._propose_window_s(round_),
        )
        self.blocks[executed.block.hash] = executed.block
        self._run(self.core.handle(ev.ValueReady(height, round_, executed.block.hash)))

    async def _fill(self, deadline: float, not_before: float) -> None:
        """Wait for more transactions until ``deadline``, or until none has arrived for
        ``fill_gap_s`` (FILL_GAP_S), whichever comes first; never less than until
        ``not_before`` (the block interval the genesis requires)."""
        now, end = self.clock(), max(deadline, not_before)
        while now < end:
            quiet_at = max(self._last_arrival + self.fill_gap_s, not_before)
            if quiet_at <= now:
                return
            step = min(end, quiet_at) - now
            await asyncio.sleep(step)
            now = max(self.clock(), now + step)  # on, even by a clock that stood still

    def _fill_target(self, limit: int) -> int:
        """The block the fill wait hopes for: ``limit``, or what admission lets the pool
        hold if that is less (node/latency_budget.py) — a pool kept at 300 by the latency
        budget never reaches a quarter of a 2,000 block, and waiting for it only added
        0.25 s to every block's consensus."""
        budget = self.mempool.budget
        return min(limit, budget.capacity(0.0)) if budget.enabled else limit

    def block_limit(self, round_: int = 0, elapsed_s: float = 0.0) -> int:
        """How many transactions to propose: ``max_block_txs``, and no more than recent
        execution times say fit in ``BLOCK_BUDGET_SHARE`` of the round's
        ``timeout_propose`` and in ``BUILD_SHARE_OF_LATENCY`` of the latency budget, less
        ``elapsed_s``, the time the round has already used
        (waiting for transactions): a proposal built after the validators' timeout
        costs the height a second round (docs/performance.md, "The proposal's time")."""
        params = self.executor.genesis.consensus
        budget_s = self._propose_window_s(round_) * BLOCK_BUDGET_SHARE
        latency = self.mempool.budget
        if latency.enabled:
            budget_s = min(budget_s, latency.budget_s * BUILD_SHARE_OF_LATENCY)
        budget_s -= elapsed_s
        fits = int(max(budget_s, 0.0) / max(self.tx_cost_s, 1e-6))
        return max(1, min(params.max_block_txs, max(MIN_BLOCK_TXS, fits)))

    def _propose_window_s(self, round_: int) -> float:
        """How long the validators wait for round ``round_``'s proposal (timeoutPropose)."""
        return TimeoutConfig.from_params(self.executor.genesis.consensus).propose(round_) / 1000

    def _observe_cost(self, txs: int, elapsed_s: float) -> None:
        """Record how long building a block of ``txs`` transactions took (wall clock:
        the timeouts are wall clock too, and other processes share the cores)."""
        if txs < COST_SAMPLE_MIN_TXS:
            return
        sample = elapsed_s / txs
        self.tx_cost_s += COST_WEIGHT * (sample - self.tx_cost_s)

    def core_key(self) -> bytes:
        key = self.core.public_key
        assert key is not None, "only a validator is asked for a value"
        return key

    def _validate(self, req: fx.RequestValidation) -> list[fx.Effect]:
        block = self.blocks.get(req.block_hash)
        valid = block is not None
        if block is not None:
            try:
                self.executor.validate_block(block, int(self.clock() * 1000))
            except InvalidBlock as exc:
                log.warning("proposal at %d/%d is invalid: %s", req.height, req.round, exc)
                valid = False
            except StorageError:
                raise  # our own store, not the proposal: the node stops
            except LedgerError as exc:
                log.warning("proposal at %d/%d failed: %s", req.height, req.round, exc)
                valid = False
        return self.core.handle(ev.ValidationResult(req.height, req.block_hash, valid))

    def _commit(self, c: fx.Commit) -> list[fx.Effect]:
        if self.executor.chain.head().height >= c.height:
            return self.core.handle(self._committed(c.height))  # catch-up got there first
        held = self.silence.decided(self.core, c.height, c.round)
        executed = self.executor.executed(c.block_hash)
        if executed is None:
            block = self.blocks.get(c.block_hash)
            if block is None:
                # We saw the certificate but never the block: fetch it by sync.
                self.host.sync_needed(c.height)
                return []
            # Decided by >2/3 precommits: judged as the certified block it is (a node
            # that joined by state sync takes evidence it could not judge itself).
            executed = self.executor.validate_block(block, None, certified=True)
        # Written on the store's thread while the next height starts (reads see it at
        # once; docs/consensus.md, "Writing a committed block behind").
        self.executor.commit(executed, c.certificate, behind=True)
        self._cancel_timers()
        self.own_messages.clear()
        self._resends = 0
        self.mempool.update(executed.block.txs)
        now = self.clock()
        block_time = now - self._height_started
        self._height_started = now
        self.rounds_at_commit = c.round + 1
        self.last_stalls = self.rounds.committed(c.height, c.round, self.timer(), held)
        self.last_phases = self.phases.committed(c.height, c.round, self.timer())
        self.last_committed = executed
        self.host.committed(executed.block, block_time)
        # Keep the blocks of proposals for later heights: the core buffered those proposals
        # and will ask to validate them once it enters their height.
        for stale in [k for k, b in self.blocks.items() if b.height <= c.height]:
            del self.blocks[stale]
        effects = self.core.handle(self._committed(c.height))
        self.silence.forget_all_but(self.core.validators)
        self._release_announce()
        return effects

    def _release_announce(self) -> None:
        """The core entered a new height: a body announced for it early is executed."""
        if self.speculation.held is None:
            return
        held = self.speculation.release(self.core.height)
        if held is not None and held[1].round == self.core.round:
            self._speculate(*held)

    def _committed(self, height: int) -> ev.BlockCommitted:
        """``height`` is committed: the core moves on with the sets of the next two heights
        (a change made by block h is in force from h+2: docs/consensus.md)."""
        validators = self.executor.validators
        return ev.BlockCommitted(height, validators(height + 1), validators(height + 2))

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        task.add_done_callback(self._log_failure)

    def _log_failure(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, StorageError):
            self._store_failed(exc)
        else:
            log.error("consensus task failed", exc_info=exc)


def _phase_mark(message: Proposal | Vote) -> str:
    """What casting ``message`` marks in its height (node/height_phases.py)."""
    if isinstance(message, Proposal):
        return "proposal"
    return "prevote" if message.type == VoteType.PREVOTE else "precommit"
