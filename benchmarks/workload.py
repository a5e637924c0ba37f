"""The timed workload: pre-signed, pre-encoded, each transaction bound to one node.

Two variants:

* ``mix`` — the realistic contract mix of :mod:`benchmarks.mix`;
* ``small`` — plain small transactions: energy regulators crediting prosumer accounts
  (one account record and one nonce written per transaction).

In both, every twentieth transaction (5 %) is invalid and must be refused at
submission and never committed, in four flavours: a corrupted signature, a
signature by another key than the sender's, an exact replay of a committed setup
transaction, and a replayed (already used) nonce of a founding agency admin.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.mix import ACTIONS, MIX, MixState
from benchmarks.population import Population, apply_payload, build_population
from ledger.crypto import PrivateKey
from ledger.tx import Transaction

INVALID_EVERY = 20  # 5 %
INVALID_KINDS = ("bad_signature", "wrong_key", "replay", "nonce_replay")
# Refusal codes each invalid flavour may get (the node checks cheap things first).
EXPECTED_CODES = {
    "bad_signature": {"bad_signature"},
    "wrong_key": {"bad_signature"},
    "replay": {"duplicate"},
    "nonce_replay": {"bad_nonce"},
}


@dataclass(slots=True)
class Item:
    raw: bytes  # canonical transaction bytes, what goes on the wire
    hash: bytes
    node: int
    category: str  # transaction kind, or one of INVALID_KINDS
    sender: bytes

    @property
    def valid(self) -> bool:
        return self.category not in EXPECTED_CODES


@dataclass
class Workload:
    name: str
    population: Population
    items: list[Item] = field(default_factory=list)

    @property
    def setup(self) -> list[list[Transaction]]:
        return self.population.phases

    def categories(self) -> Counter[str]:
        return Counter(item.category for item in self.items)

    def valid_count(self) -> int:
        return sum(1 for item in self.items if item.valid)


def build_workload(
    chain_id: str,
    now_ms: int,
    nodes: int,
    txs: int,
    *,
    name: str = "mix",
    seed: int = 7,
    scale: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Workload:
    """``txs`` timed transactions (5 % invalid) after the population's setup phases."""
    if name not in ("mix", "small"):
        raise ValueError(f"unknown workload {name!r}: mix or small")
    pop = build_population(chain_id, now_ms, nodes, scale=scale, seed=seed)
    work = Workload(name, pop)
    state = MixState(pop)
    rng = random.Random(seed + 1)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    invalid = _InvalidFactory(pop, rng)
    small = _SmallFactory(pop)
    node_of = {a.key.public_key: a.node for a in pop.all_actors()}
    for i in range(txs):
        if i % INVALID_EVERY == INVALID_EVERY - 1:
            work.items.append(invalid.next(i))
        else:
            action = small if name == "small" else ACTIONS[rng.choices(kinds, weights)[0]]
            tx = action(state)
            work.items.append(Item(tx.encode(), tx.hash, node_of[tx.sender], tx.kind, tx.sender))
        if progress is not None and i % 2000 == 1999:
            progress(2000)
    return work


def bench_workload(nodes: int, txs: int, *, name: str, seed: int, scale: int = 1) -> Workload:
    """:func:`build_workload` for a bench network (chain ``cityledger-bench``), from now."""
    return build_workload(
        "cityledger-bench",
        int(time.time() * 1000),
        nodes,
        txs,
        name=name,
        seed=seed,
        scale=scale,
    )


class _SmallFactory:
    """Regulators crediting prosumer accounts: the smallest useful transaction."""

    def __init__(self, pop: Population) -> None:
        self.pop = pop
        self.n = 0

    def __call__(self, state: MixState) -> Transaction:
        regulators = self.pop.actors["energy_regulator"]
        accounts = self.pop.orgs["prosumer"]
        self.n += 1
        regulator = regulators[self.n % len(regulators)]
        body = {
            "account": accounts[self.n % len(accounts)],
            "amount": 1 + self.n % 9973,
            "reference": f"s{self.n}",
        }
        return regulator.sign(self.pop.chain_id, "energy.credit_balance", body)


class _InvalidFactory:
    """Transactions the network must refuse: forged signatures and replays."""

    def __init__(self, pop: Population, rng: random.Random) -> None:
        self.pop = pop
        self.rng = rng
        self.attacker = PrivateKey.from_label("bench/attacker")
        self.setup = [tx for phase in pop.phases for tx in phase]
        self.n = 0

    def next(self, position: int) -> Item:
        flavour = INVALID_KINDS[self.n % len(INVALID_KINDS)]
        self.n += 1
        node = position % max(1, 1 + max(a.node for a in self.pop.admins))
        if flavour in ("bad_signature", "wrong_key"):
            victim = self.pop.admins[self.n % len(self.pop.admins)]
            body = apply_payload(f"FORGED-{self.n:07d}", self.n)
            chain = self.pop.chain_id
            real = Transaction.create(victim.key, chain, "permit.apply", 0, body)
            if flavour == "bad_signature":
                sig = bytes([real.signature[0] ^ 0x01]) + real.signature[1:]
            else:
                sig = Transaction.create(self.attacker, chain, "permit.apply", 0, body).signature
            tx = Transaction(real.kind, chain, real.sender, 0, real.payload, sig)
            return Item(tx.encode(), tx.hash, victim.node, flavour, tx.sender)
        if flavour == "replay":
            tx = self.setup[self.rng.randrange(len(self.setup))]
            return Item(tx.encode(), tx.hash, node, flavour, tx.sender)
        founder = list(self.pop.founders.values())[self.n % len(self.pop.founders)]
        used = self.rng.randrange(max(1, founder.nonce))
        body = {"account": self.pop.orgs["prosumer"][0], "amount": 1, "reference": f"x{self.n}"}
        tx = Transaction.create(founder.key, self.pop.chain_id, "energy.credit_balance", used, body)
        return Item(tx.encode(), tx.hash, node, flavour, tx.sender)
