"""Seeded scenarios: generate a world from a seed, run it, check it.

``run_scenario(seed)`` is a pure function of its arguments: one
``random.Random(seed)`` draws the scenario (network faults, byzantine validators,
crashes) and seeds the run's own generator, and nothing else is random. A failing
result's :meth:`Result.report` names the seed, the scenario and the last ~200
events.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace

from node.consensus.timeouts import TimeoutConfig
from node.consensus.verifier import Verifier
from tests.sim.app import BlockStore
from tests.sim.checker import Recorder, check
from tests.sim.fixtures import CHAIN_ID, KEYS, validator_set
from tests.sim.idle import Burst, IdlePlan, check_idle, draw_idle, settled
from tests.sim.network import NetConfig, Network, Partition, Scheduler
from tests.sim.node import (
    AMNESIA,
    DOUBLE_VOTE,
    EQUIVOCATE,
    INVALID,
    TWIN,
    WITHHOLD,
    SimNode,
)
from tests.sim.trace import Trace
from tests.sim.valsets import Schedule, draw

BEHAVIOURS = (EQUIVOCATE, DOUBLE_VOTE, WITHHOLD, INVALID, AMNESIA, TWIN)
SIM_TIMEOUTS = TimeoutConfig(
    propose_ms=200,
    propose_delta_ms=100,
    prevote_ms=100,
    prevote_delta_ms=50,
    precommit_ms=100,
    precommit_delta_ms=50,
)


@dataclass(frozen=True)
class Crash:
    node: int
    at: int
    back: int
    mid_event: bool  # lose the effects of the event being processed (signed, not sent)
    wipe_signer: bool = False  # amnesia: a byzantine restart with its signing state gone


@dataclass
class ScenarioConfig:
    seed: int
    n: int
    net: NetConfig
    byzantine: dict[int, str]
    crashes: list[Crash]
    run_seed: int
    twin_groups: tuple[frozenset[int], frozenset[int]] | None = None
    timeouts: TimeoutConfig = SIM_TIMEOUTS
    liveness_heights: int = 5
    liveness_bound: int = 60_000
    gossip_ms: int = 200
    sync_ms: int = 300
    max_events: int = 3_000_000
    extra: list[str] = field(default_factory=list)
    valsets: Schedule | None = None  # validator-set changes (None: the first set forever)
    idle: IdlePlan | None = None  # heights wait for transactions (tests/sim/idle.py)

    def describe(self) -> str:
        byz = ", ".join(f"v{i}: {b}" for i, b in sorted(self.byzantine.items())) or "none"
        crashes = ", ".join(
            f"v{c.node} down {c.at}..{c.back}ms" + (" mid-event" if c.mid_event else "")
            for c in self.crashes
            if not c.wipe_signer
        )
        sets = self.valsets.describe() if self.valsets is not None else "none"
        idle = f"; {self.idle.describe()}" if self.idle is not None else ""
        return (
            f"n={self.n}; byzantine: {byz}; crashes: {crashes or 'none'}; {self.net.describe()}"
            f"; validator-set changes: {sets}{idle}"
        )


def generate(
    seed: int, n: int | None = None, *, twins: int | None = None, changes: bool = True
) -> ScenarioConfig:
    """Draw a scenario: n=4 for even seeds and n=7 for odd ones unless given.

    ``twins`` forces that many twin validators and no other byzantine behaviour
    (the checker's own test uses more than f of them). ``changes``: draw validator-set
    changes too (tests/sim/valsets.py), from a generator of their own so that the rest
    of a seed's scenario is the one it was before sets could change.
    """
    rng = random.Random(seed)
    n = n if n is not None else (4 if seed % 2 == 0 else 7)
    f = (n - 1) // 3
    gst = rng.randint(300, 3000)
    net = NetConfig(
        gst=gst,
        min_delay=rng.randint(1, 5),
        max_delay=rng.choice([20, 50, 100, 200, 400]),
        post_gst_max_delay=rng.choice([10, 30, 60]),
        drop=rng.choice([0.0, 0.0, 0.02, 0.05, 0.2]),
        duplicate=rng.choice([0.0, 0.02, 0.1]),
    )
    if twins is None:
        chosen = rng.sample(range(n), rng.randint(0, f))
        byzantine = {i: rng.choice(BEHAVIOURS) for i in sorted(chosen)}
    else:
        byzantine = {i: TWIN for i in sorted(rng.sample(range(n), twins))}
    honest = [i for i in range(n) if i not in byzantine]
    crashes = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        at = rng.randint(0, gst - 50)
        crashes.append(
            Crash(rng.choice(honest), at, rng.randint(at + 5, gst - 1), rng.random() < 0.5)
        )
    for i, b in byzantine.items():
        if b == AMNESIA:
            at = rng.randint(0, gst - 50)
            crashes.append(Crash(i, at, at + rng.randint(1, 40), rng.random() < 0.5, True))
    twin_ids = [i for i, b in byzantine.items() if b == TWIN]
    twin_groups = None
    if twin_ids:
        shuffled = honest[:]
        rng.shuffle(shuffled)
        cut = (len(shuffled) + 1) // 2
        others = [i for i, b in byzantine.items() if b != TWIN]
        group_a = frozenset(shuffled[:cut] + twin_ids + others)
        group_b = frozenset(shuffled[cut:] + [n + k for k in range(len(twin_ids))])
        twin_groups = (group_a, group_b)
        if twins is not None or rng.random() < 0.8:
            net.partitions.append(Partition(0, gst, (group_a, group_b)))
    else:
        everyone = list(range(n))
        for _ in range(rng.choice([0, 0, 1, 2])):
            start = rng.randint(0, gst - 20)
            end = rng.randint(start + 10, gst)
            rng.shuffle(everyone)
            cut = rng.randint(1, n - 1)
            net.partitions.append(
                Partition(start, end, (frozenset(everyone[:cut]), frozenset(everyone[cut:])))
            )
    first = validator_set(n)
    faulty = {KEYS[i].public_key for i in byzantine}
    valsets = draw(random.Random(f"valsets-{seed}"), first, n, faulty) if changes else None
    idle = draw_idle(seed, gst, honest)
    timeouts = SIM_TIMEOUTS
    if idle is not None:
        timeouts = replace(SIM_TIMEOUTS, empty_block_interval_ms=idle.interval_ms)
    return ScenarioConfig(
        seed,
        n,
        net,
        byzantine,
        crashes,
        rng.getrandbits(64),
        twin_groups=twin_groups,
        timeouts=timeouts,
        valsets=valsets,
        idle=idle,
    )


@dataclass
class Result:
    seed: int
    n: int
    description: str
    violations: list[str]
    heights: int  # committed by every honest node
    sim_time: int
    events: int
    trace: list[str]
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self) -> str:
        lines = [
            f"seed {self.seed} (n={self.n}) FAILED — rerun: "
            f"python -m tests.sim.run --start {self.seed} --seeds 1 --validators {self.n} -v",
            f"scenario: {self.description}",
            *(f"  VIOLATION {v}" for v in self.violations),
            f"last {len(self.trace)} events:",
            *self.trace,
        ]
        return "\n".join(lines)


class World:
    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self.rng = random.Random(config.run_seed)
        self.sched = Scheduler()
        self.net = Network(self.sched, self.rng, config.net)
        self.valsets = config.valsets or Schedule(validator_set(config.n))
        self.validators = self.valsets.first
        self.verifier = Verifier(CHAIN_ID)
        self.blocks = BlockStore(self.valsets, CHAIN_ID)
        self.recorder = Recorder()
        self.trace = Trace()
        self.nodes: dict[int, SimNode] = {}
        n = config.n
        for i in range(n):
            self.nodes[i] = SimNode(self, i, i, f"v{i}", config.byzantine.get(i))
        twin_ids = [i for i, b in config.byzantine.items() if b == TWIN]
        for k, i in enumerate(twin_ids):
            self.nodes[n + k] = SimNode(self, n + k, i, f"v{i}'", TWIN)
        if config.twin_groups is not None:
            for group in config.twin_groups:
                for member in group:
                    if member in twin_ids or member >= n:
                        self.net.links[member] = group - {member}
        # keys a change brings in: honest nodes that follow as observers until added
        scheduled = self.valsets.keys()
        for index in range(n, len(KEYS)):
            if KEYS[index].public_key in scheduled:
                self.nodes[100 + index] = SimNode(self, 100 + index, index, f"v{index}", None)
        for node in self.nodes.values():
            node.peers = [
                p for p in sorted(self.nodes) if p != node.id and self.net.linked(node.id, p)
            ]
        # a removed validator keeps running on its old set: honest, but no longer one of
        # the nodes whose chains must agree and grow
        self.honest_ids = [
            i
            for i, node in sorted(self.nodes.items())
            if node.behaviour is None and node.removed_at is None
        ]
        self.honest_keys = {
            node.key.public_key for node in self.nodes.values() if node.behaviour is None
        }
        self.key_names = {KEYS[i].public_key: f"v{i}" for i in range(len(KEYS))}
        self.height_at_gst: dict[int, int] = {}
        self.after_gst = False
        self.done = False
        self.max_round = 0
        self.tx_commit_at: dict[int, dict[int, int]] = {}  # node id -> tx -> commit time
        # read by the prompt check (tests/sim/idle.py) when a height needed several rounds
        self.tx_proposed_at: dict[int, int] = {}  # tx -> first honest proposal carrying it
        self.tx_height: dict[int, int] = {}  # tx -> the height an honest node decided it in
        self.decided_round: dict[int, int] = {}  # height -> round its first honest decision took
        self.entered_at: dict[tuple[int, int], int] = {}  # (node id, height) -> first there
        self.round0_at: dict[tuple[int, int], int] = {}  # (node id, height) -> round 0 begun

    def send(self, src: int, dst: int, message: object) -> None:
        self.net.send(src, dst, self.nodes[dst].deliver, message)

    def on_commit(
        self, node: SimNode, height: int, block_hash: bytes, *, synced: bool, round_: int = 0
    ) -> None:
        """``round_``: the round of the decision (a commit by consensus, not ``synced``)."""
        if node.core is not None and node.core.round > self.max_round:
            self.max_round = node.core.round
        committed = self.tx_commit_at.setdefault(node.id, {})
        decided = not synced and node.id in self.honest_ids
        if decided:
            self.decided_round.setdefault(height, round_)
        for tx in self.blocks.blocks[block_hash].txs:
            committed.setdefault(tx, self.sched.now)
            if decided:
                self.tx_height.setdefault(tx, height)
        self.recorder.commit_times.setdefault(node.id, []).append(self.sched.now)
        self.recorder.synced += synced
        self.trace.add(self.sched.now, node.name, "synced" if synced else "commit", block_hash)
        if self.after_gst and not self.done:
            self.done = self._all_live()

    def _all_live(self) -> bool:
        k = self.config.liveness_heights
        live = all(len(self.nodes[i].chain) >= self.height_at_gst[i] + k for i in self.honest_ids)
        return live and settled(self)

    def tx_committed_everywhere(self, tx: int) -> int | None:
        """When the last honest node committed ``tx``; None if one has not."""
        times = [self.tx_commit_at.get(i, {}).get(tx) for i in self.honest_ids]
        return None if None in times else max(t for t in times if t is not None)

    def _burst(self, burst: Burst) -> None:
        """Transactions reach one honest validator (another one if it is down)."""
        up = [i for i in self.honest_ids if self.nodes[i].up]
        target = burst.node if self.nodes[burst.node].up or not up else up[0]
        self.trace.add(self.sched.now, self.nodes[target].name, f"{len(burst.txs)} txs arrive")
        self.nodes[target].receive_txs(burst.txs)

    def _at_gst(self) -> None:
        self.after_gst = True
        for i in self.honest_ids:
            self.height_at_gst[i] = len(self.nodes[i].chain)
        self.trace.add(self.sched.now, "net", "GST: partitions healed, no more drops")
        self.done = self._all_live()

    def _crash(self, crash: Crash) -> None:
        node = self.nodes[crash.node]
        if crash.mid_event:
            node.crash_mid_event = True
        else:
            node.crash()

    def _restart(self, crash: Crash) -> None:
        node = self.nodes[crash.node]
        node.crash_mid_event = False
        node.crash()
        node.boot(wipe_signer=crash.wipe_signer)

    def run(self) -> Result:
        config = self.config
        for node in self.nodes.values():
            self.sched.at(self.rng.randint(0, 30), node.boot)
        for crash in config.crashes:
            self.sched.at(crash.at, self._crash, crash)
            self.sched.at(crash.back, self._restart, crash)
        self.sched.at(config.net.gst, self._at_gst)
        for burst in config.idle.bursts if config.idle is not None else ():
            self.sched.at(burst.at, self._burst, burst)
        self.sched.run(config.net.gst + config.liveness_bound, lambda: self.done, config.max_events)
        violations = check(self) + check_idle(self)
        if self.sched.events >= config.max_events:
            violations.append(f"budget: stopped after {self.sched.events} events")
        names = self.key_names
        stats: Counter[str] = Counter()
        for node in self.nodes.values():
            if node.core is not None:
                stats.update(node.core.counters)
        stats["synced"] = self.recorder.synced
        stats["evidence"] = len(self.recorder.evidence)
        stats["max_round"] = self.max_round
        stats["dropped"] = self.net.dropped
        stats["cut_short"] = sum(node.cut_short for node in self.nodes.values())
        return Result(
            seed=config.seed,
            n=config.n,
            description=config.describe(),
            violations=violations,
            heights=min(len(self.nodes[i].chain) for i in self.honest_ids),
            sim_time=self.sched.now,
            events=self.sched.events,
            trace=self.trace.lines(names) if violations else [],
            stats=stats,
        )


def run_scenario(
    seed: int, n: int | None = None, *, twins: int | None = None, changes: bool = True
) -> Result:
    return World(generate(seed, n, twins=twins, changes=changes)).run()
