"""The proposer's side of the network path: blocks sized by measured execution time
and by the latency budget, the wait for a fuller block (and its end when transactions
stop arriving), the body announced before the build, and the own proposal not re-sent
every second."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from ledger.block import Block
from ledger.evidence import Evidence
from ledger.genesis import FOUNDING_TIMEOUT_PROPOSE_MS, ConsensusParams, founding_consensus
from ledger.tx import Transaction
from ledger.votes import Proposal, Vote
from node import driver as driver_mod
from node.consensus import effects as fx
from node.driver import ConsensusDriver
from node.latency_budget import LatencyBudget
from node.wire import (
    AnnounceMsg,
    ProposalMsg,
    VoteMsg,
    framed,
)
from tests.unit.node.chainkit import (
    CHAIN,
    VALIDATOR_KEYS,
    Kit,
    a_vote,
    certify,
    make_genesis,
    member_tx,
)

# --- driver: block budget and re-sends ----------------------------------------------------


class FakeCore:
    public_key = VALIDATOR_KEYS[0].public_key
    waiting = False  # not a height waiting for something to commit
    height = 1

    def __init__(self) -> None:
        self.votes: list[Vote] = []
        self.handled: list[object] = []
        self.validators = make_genesis().validators

    def known_messages(self) -> list[Vote]:
        return self.votes

    def round_state(self, round_: int) -> None:
        return None  # no proposal or vote kept

    def handle(self, event: object) -> list[object]:
        self.handled.append(event)
        return []


class FakeMempool:
    def __init__(self, txs: list[Transaction]) -> None:
        self.txs = txs
        self.asked: list[int] = []

    def __len__(self) -> int:
        return len(self.txs)

    def reap(self, max_txs: int, max_bytes: int) -> list[Transaction]:
        self.asked.append(max_txs)
        return self.txs[:max_txs]

    def update(self, committed: object) -> None:
        pass

    def pick(self, tx_hashes: tuple[bytes, ...]) -> list[Transaction] | None:
        by_hash = {tx.hash: tx for tx in self.txs}
        picked = [by_hash.get(h) for h in tx_hashes]
        return None if None in picked else picked  # type: ignore[return-value]

    budget = LatencyBudget(0.0)  # off: the fill wait hopes for a whole block


class FakeNode:
    """The driver's network and host: what it broadcasts lands in ``sent``."""

    def __init__(self, sent: list[ProposalMsg | VoteMsg]) -> None:
        self.sent = sent
        self.announced: list[AnnounceMsg] = []

    def broadcast_consensus(self, msg: ProposalMsg | VoteMsg) -> None:
        self.sent.append(msg)

    async def announce(self, msg: AnnounceMsg) -> None:
        self.announced.append(msg)

    def evidence_found(self, evidence: Evidence) -> None:
        pass

    def committed(self, block: Block, block_time_s: float) -> None:
        pass

    def sync_needed(self, height: int) -> None:
        pass

    def store_failed(self, message: str) -> None:
        raise AssertionError(message)

    def pending_evidence(self, height: int) -> list[Evidence]:
        return []


def make_driver(
    kit: Kit,
    pool: FakeMempool,
    sent: list[ProposalMsg | VoteMsg],
    timer: Any = None,
    speculate: bool = False,
) -> ConsensusDriver:
    extra = {} if timer is None else {"timer": timer}
    node = FakeNode(sent)
    return ConsensusDriver(
        FakeCore(),  # type: ignore[arg-type]
        kit.executor,
        pool,  # type: ignore[arg-type]
        node,
        node,
        speculate=speculate,
        **extra,
    )


def test_the_block_limit_follows_measured_execution_time() -> None:
    kit = Kit()
    driver = make_driver(kit, FakeMempool([]), [])
    params = kit.genesis.consensus
    budget_s = params.timeout_propose_ms / 1000 * driver_mod.BLOCK_BUDGET_SHARE
    assert driver.block_limit() == int(budget_s / driver_mod.INITIAL_TX_COST_S)
    for _ in range(30):  # 5 ms per transaction: only what fits in the budget
        driver._observe_cost(400, 2.0)
    assert driver.block_limit() == pytest.approx(budget_s / 0.005, rel=0.02)
    for _ in range(30):  # very slow: never below the floor
        driver._observe_cost(100, 10.0)
    assert driver.block_limit() == driver_mod.MIN_BLOCK_TXS
    for _ in range(60):  # very fast: never above max_block_txs
        driver._observe_cost(1000, 0.001)
    assert driver.block_limit() == params.max_block_txs
    before = driver.tx_cost_s
    driver._observe_cost(3, 5.0)  # tiny blocks are per-block overhead: not sampled
    assert driver.tx_cost_s == before


def test_the_time_a_round_has_used_comes_off_the_block() -> None:
    """A proposal built after the validators' timeout_propose costs the height a second
    round: the block is sized to what fits in the share of the round's timeout that is
    left, and a later round (with its longer timeout) allows more again."""
    kit = Kit()
    driver = make_driver(kit, FakeMempool([]), [])
    params = kit.genesis.consensus
    driver.tx_cost_s = 0.002
    share = driver_mod.BLOCK_BUDGET_SHARE
    full_s = params.timeout_propose_ms / 1000 * share
    assert driver.block_limit() == int(full_s / 0.002)
    assert driver.block_limit(0, full_s / 2) == pytest.approx(full_s / 2 / 0.002, abs=1)
    assert driver.block_limit(0, full_s * 2) == driver_mod.MIN_BLOCK_TXS  # late: the floor
    later_s = (params.timeout_propose_ms + params.timeout_delta_ms) / 1000 * share
    assert driver.block_limit(1) == min(params.max_block_txs, int(later_s / 0.002))
    assert driver.block_limit(1) > driver.block_limit(0)


def test_the_build_stays_within_its_share_of_the_latency_budget() -> None:
    """A longer timeout_propose lets a late proposal through; it does not make blocks
    longer to build: each transaction waits for about two of them."""
    kit = Kit()
    pool = FakeMempool([])
    pool.budget = LatencyBudget(2.0)
    driver = make_driver(kit, pool, [])
    driver.tx_cost_s = 0.001
    window_s = FOUNDING_TIMEOUT_PROPOSE_MS / 1000  # a network founded today
    driver._propose_window_s = lambda round_: window_s + round_ * 0.25  # type: ignore[method-assign]
    share = driver_mod.BUILD_SHARE_OF_LATENCY
    assert window_s * driver_mod.BLOCK_BUDGET_SHARE > 2.0 * share
    assert driver.block_limit() == pytest.approx(2.0 * share / 0.001, abs=1)
    assert driver.block_limit(3) == driver.block_limit()  # later rounds too
    assert driver.block_limit(0, 0.3) == pytest.approx((2.0 * share - 0.3) / 0.001, abs=1)
    pool.budget = LatencyBudget(0.0)  # off: the timeout's share alone
    full_s = window_s * driver_mod.BLOCK_BUDGET_SHARE
    max_txs = kit.genesis.consensus.max_block_txs
    assert driver.block_limit() == min(max_txs, int(full_s / 0.001))


async def _arriving(driver: ConsensusDriver, every_s: float) -> None:
    """Transactions reaching the pool every ``every_s``, until cancelled."""
    while True:
        driver.txs_arrived()
        await asyncio.sleep(every_s)


async def _build_while_arriving(driver: ConsensusDriver, every_s: float) -> None:
    arrivals = asyncio.create_task(_arriving(driver, every_s))
    try:
        await driver._build_value(1, 0)
    finally:
        arrivals.cancel()


async def test_a_proposer_that_waited_for_transactions_builds_a_smaller_block() -> None:
    kit = Kit()
    pool = FakeMempool([member_tx(i) for i in range(3)])  # under a quarter: it waits
    driver = make_driver(kit, pool, [])
    driver.tx_cost_s = 0.002  # 400 fit in the round's share of a 1 s timeout
    driver.fill_wait_s = 0.3
    driver._height_started = time.time()
    await _build_while_arriving(driver, 0.02)  # they keep coming: it waits it out
    assert pool.asked and pool.asked[0] <= driver.block_limit(0, 0.25) < driver.block_limit()


@pytest.mark.parametrize("speculate", [True, False])
async def test_a_proposer_announces_its_body_before_it_builds_only_if_told_to(
    speculate: bool,
) -> None:
    kit = Kit()
    pool = FakeMempool([member_tx(i) for i in range(5)])
    driver = make_driver(kit, pool, [], speculate=speculate)
    network: FakeNode = driver.network  # type: ignore[assignment]
    built: list[int] = []
    build = kit.executor.build_block

    def build_after_announce(*args: Any, **kw: Any) -> Any:
        built.append(len(network.announced))  # what had been announced when it began
        return build(*args, **kw)

    kit.executor.build_block = build_after_announce  # type: ignore[method-assign]
    await driver._build_value(1, 0)
    block = next(iter(driver.blocks.values()))
    if not speculate:
        assert network.announced == [] and built == [0]
        return
    assert built == [1]
    (body,) = network.announced
    assert (body.height, body.round, body.last_cert) == (1, 0, None)
    assert body.tx_hashes == tuple(tx.hash for tx in block.txs)
    assert body.time_ms == block.header.time_ms


async def test_a_proposal_ready_after_the_validators_timeout_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit = Kit()
    pool = FakeMempool([member_tx(i) for i in range(60)])
    driver = make_driver(kit, pool, [])
    driver.fill_wait_s = 0.0
    now = [1_000.0]
    driver.clock = lambda: now[0]
    build = driver.executor.build_block

    window_s = kit.genesis.consensus.timeout_propose_ms / 1000

    def slow_build(*args: Any) -> Any:
        now[0] += window_s + 0.7  # longer than a round-0 proposal may take
        return build(*args)

    driver.executor.build_block = slow_build  # type: ignore[method-assign,assignment]
    with caplog.at_level("WARNING", logger="cityledger.consensus"):
        await driver._build_value(1, 0)
    ready = f"height 1 round 0: our proposal of 60 transactions was ready {window_s + 0.7:.2f} s"
    assert ready in caplog.text
    caplog.clear()
    driver.executor.build_block = build  # type: ignore[method-assign]
    await driver._build_value(1, 0)  # built at once: on time, nothing said
    assert caplog.text == ""


async def test_a_slow_block_makes_the_next_proposal_smaller() -> None:
    kit = Kit()
    pool = FakeMempool([member_tx(i) for i in range(60)])
    ticks = iter([0.0, 3.0, 10.0, 10.0])  # the first build takes 3 s (50 ms per tx)
    driver = make_driver(kit, pool, [], timer=lambda: next(ticks))
    driver.fill_wait_s = 0.0  # no wait for a fuller block: the whole round's share
    first = driver.block_limit()
    await driver._build_value(1, 0)
    assert len(pool.asked) == 1 and first - 1 <= pool.asked[0] <= first
    assert driver.tx_cost_s > driver_mod.INITIAL_TX_COST_S * 10
    assert driver.block_limit() < first


async def test_a_nearly_empty_mempool_is_given_a_moment_to_fill() -> None:
    kit = Kit()
    few = FakeMempool([member_tx(0)])
    driver = make_driver(kit, few, [])
    driver.fill_wait_s = 0.3
    driver._height_started = time.time()
    started = time.monotonic()
    await _build_while_arriving(driver, 0.02)
    assert time.monotonic() - started >= 0.25
    # the time waited comes off the block (test_the_time_a_round_has_used_...)
    assert few.asked and few.asked[0] <= driver.block_limit(0, 0.25)

    kit = Kit()
    many = FakeMempool([member_tx(i) for i in range(driver.block_limit() // 4 + 1)])
    driver = make_driver(kit, many, [])
    driver.fill_wait_s = 5.0
    driver._height_started = time.time()
    started = time.monotonic()
    await driver._build_value(1, 0)  # enough for a quarter block: no waiting
    assert time.monotonic() - started < 2.0
    assert len(many.asked) == 1


async def test_the_fill_wait_hopes_for_no_more_than_admission_lets_wait() -> None:
    kit = Kit()
    pool = FakeMempool([member_tx(i) for i in range(11)])
    pool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=40)  # lets 40 ready ones wait
    driver = make_driver(kit, pool, [])
    assert driver.block_limit() // 4 > 11  # a quarter block would be more than the pool
    driver.fill_wait_s = 5.0
    driver._height_started = time.time()
    started = time.monotonic()
    await driver._build_value(1, 0)  # but 11 is a quarter of the 40 admission allows
    assert time.monotonic() - started < 2.0
    assert len(pool.asked) == 1


class _Arrivals:
    """A clock that ``sleep`` moves on, and transactions arriving at given offsets from
    its start while the driver sleeps (each noted as the pool's last arrival)."""

    def __init__(self, driver: ConsensusDriver, start: float, at: list[float]) -> None:
        self.start = self.now = start
        self.at = [start + t for t in at]
        self.slept: list[float] = []
        self.driver = driver
        driver.clock = lambda: self.now

    def elapsed(self) -> float:
        return self.now - self.start

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        until = self.now + seconds
        for t in self.at:
            if self.now < t <= until:
                self.now = t
                self.driver.txs_arrived()
        self.now = until


def _filling_driver(
    monkeypatch: pytest.MonkeyPatch, at: list[float], interval_ms: int = 0
) -> tuple[ConsensusDriver, _Arrivals, FakeMempool]:
    """A proposer with a pool under a quarter block (it waits to fill it) whose last
    block was committed, and made, just now."""
    kit = Kit()
    consensus = replace(kit.genesis.consensus, min_block_interval_ms=interval_ms)
    monkeypatch.setattr(kit.executor, "genesis", replace(kit.genesis, consensus=consensus))
    head = kit.executor.chain.head()
    start = head.time_ms / 1000
    monkeypatch.setattr(kit.executor.chain, "head", lambda: head)
    pool = FakeMempool([member_tx(i) for i in range(3)])
    driver = make_driver(kit, pool, [])
    arrivals = _Arrivals(driver, start, at)
    monkeypatch.setattr(driver_mod.asyncio, "sleep", arrivals.sleep)
    driver.fill_wait_s, driver.fill_gap_s = 0.25, 0.1
    driver._height_started = driver._last_arrival = start
    return driver, arrivals, pool


async def test_no_fill_wait_after_a_height_that_turned_clients_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clients refused during the last height come back at their turns whatever the
    proposer does: waiting for them only left the cores idle."""
    driver, arrivals, pool = _filling_driver(monkeypatch, [])
    pool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=1000)
    driver.fill_wait_s = 0.2
    driver.fill_gap_s = 1.0  # arrivals stopping do not end this wait (tested below)
    pool.budget.turned_away()
    pool.budget.committed(500, 1.0)  # the height that refused them ends
    await driver._build_value(1, 0)
    assert arrivals.slept == [] and len(pool.asked) == 1
    pool.budget.committed(3, 2.0)  # a height that refused nobody: the wait is back
    await driver._build_value(1, 0)
    assert arrivals.slept == pytest.approx([0.2]) and len(pool.asked) == 2


async def test_the_fill_wait_ends_once_transactions_stop_arriving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clients let in together at a commit and then none for the rest of the height:
    the block is built a gap after the last arrival, not at the end of the wait."""
    driver, arrivals, pool = _filling_driver(monkeypatch, [0.05, 0.12])
    await driver._build_value(1, 0)
    assert arrivals.slept == pytest.approx([0.1, 0.05, 0.07])  # quiet from 0.12
    assert len(pool.asked) == 1 and arrivals.elapsed() == pytest.approx(0.22)


async def test_a_steady_stream_fills_the_whole_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    driver, arrivals, pool = _filling_driver(monkeypatch, [i * 0.04 for i in range(1, 9)])
    await driver._build_value(1, 0)
    assert arrivals.elapsed() == pytest.approx(0.25) and len(pool.asked) == 1


async def test_nothing_arriving_waits_one_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    driver, arrivals, pool = _filling_driver(monkeypatch, [])
    await driver._build_value(1, 0)
    assert arrivals.slept == pytest.approx([0.1]) and len(pool.asked) == 1


async def test_the_block_interval_is_kept_when_arrivals_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``min_block_interval_ms`` is the genesis's rule, not a wait the gap may cut."""
    driver, arrivals, pool = _filling_driver(monkeypatch, [], interval_ms=200)
    await driver._build_value(1, 0)
    assert arrivals.elapsed() == pytest.approx(0.2) and len(pool.asked) == 1


def test_genesis_defaults_keep_a_full_block_within_the_propose_timeout() -> None:
    params = ConsensusParams()
    assert params.max_block_txs <= 2000
    assert params.timeout_propose_ms >= 1000


def test_a_network_founded_today_waits_longer_for_a_proposal_than_the_format_default() -> None:
    """New networks write 2 s into their genesis; a genesis file that leaves the field out
    still means the format's 1 s, so an existing network's genesis hash never changes."""
    assert ConsensusParams().timeout_propose_ms == 1000
    founded = founding_consensus(min_block_interval_ms=7)
    assert founded.timeout_propose_ms == FOUNDING_TIMEOUT_PROPOSE_MS == 2000
    assert founded.min_block_interval_ms == 7
    assert founding_consensus(timeout_propose_ms=3000).timeout_propose_ms == 3000


def test_the_own_proposal_is_re_sent_less_often_than_votes() -> None:
    kit = Kit()
    sent: list[ProposalMsg | VoteMsg] = []
    driver = make_driver(kit, FakeMempool([]), sent)
    block = kit.build([]).block
    proposal = framed(
        ProposalMsg(Proposal.create(VALIDATOR_KEYS[0], CHAIN, 1, 0, block.hash, -1), block)
    )
    vote = framed(VoteMsg(a_vote()))
    driver.own_messages.extend([proposal, vote])
    ticks = driver_mod.PROPOSAL_RESEND_TICKS
    for _ in range(ticks):
        driver.resend_own()
    assert sum(isinstance(m, ProposalMsg) for m in sent) == 1
    assert sum(isinstance(m, VoteMsg) for m in sent) == ticks
    assert all(m.raw for m in sent)  # encoded once, when signed


def test_a_commit_keeps_the_blocks_of_proposals_for_later_heights() -> None:
    kit, ahead = Kit(), Kit()
    first = kit.build([]).block
    ahead.commit([])
    second = ahead.build([]).block  # a proposal for height 2, received while at height 1
    driver = make_driver(kit, FakeMempool([]), [])
    driver.blocks[first.hash] = first
    driver.blocks[second.hash] = second
    driver._commit(fx.Commit(1, 0, first.hash, certify(first)))
    assert kit.chain.head().height == 1
    assert list(driver.blocks) == [second.hash]  # the core will ask to validate it
