"""``cityledger bench stages``: the CPU cost of each step a transaction takes inside the nodes.

No network and no event loop: two nodes of a generated network are opened in this
process (a proposer and a validator, each on its own LevelDB store) and the workload
is pushed through the steps the node runtime takes, block by block, each step timed
with ``time.process_time`` (CPU time of this process, which other load on the machine
inflates far less than wall time):

* ``api_decode`` — a submission body (canonical msgpack) and each transaction in it;
* ``verify`` — the Ed25519 signature, once per node;
* ``admit`` — the mempool's other admission checks (nonce, contract admission);
* ``gossip_encode`` / ``gossip_decode`` — one transaction batch frame, sent and received;
* ``build`` — the proposer executes its block (contracts, state tree, log, roots);
* ``proposal_encode`` / ``proposal_decode`` — the proposal frame with the whole block;
* ``validate`` — a validator re-executes the block;
* ``votes`` — every validator's prevote and precommit signed, and checked by one node;
* ``commit`` — the synced write batch, and the mempool update after it.

From these, the CPU one transaction costs the whole network when each node does each
step once (``network_ms_per_tx``), and the rate the machine's cores allow at that cost:
the figure the real network reaches only if it adds no work of its own (duplicate
gossip, relayed and re-sent frames).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nacl.bindings

from benchmarks.ceiling import cores
from benchmarks.workload import Workload, build_workload
from contracts.signed_payloads import payload_signature
from devnet import layout
from ledger import compiled
from ledger.crypto import PrivateKey
from ledger.encoding import decode, encode
from ledger.keyfile import read_key_file
from ledger.tx import Transaction
from ledger.verdicts import GOOD, verdict_key
from ledger.votes import CommitCertificate, Proposal, Vote, VoteType
from node.collector import settled
from node.config import Home
from node.executor import ExecutedBlock
from node.process import open_node
from node.runtime import Node
from node.wire import ProposalMsg, TxBatch, decode_message, encode_message

T = TypeVar("T")
FRAME_MAX = 64 * 1024 * 1024
# Steps every node does for every transaction, and steps done once per network.
PER_NODE = ("verify", "admit", "gossip_decode", "commit", "recheck")
ONCE = ("api_decode", "gossip_encode", "build", "proposal_encode")
PER_VALIDATOR = ("proposal_decode", "validate")  # every node but the proposer


@dataclass
class StageOptions:
    workload: str = "mix"
    txs: int = 20_000
    validators: int = 4
    block_txs: int = 2000
    seed: int = 7


@dataclass
class Clock:
    """CPU seconds per step."""

    spent: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def time(self, step: str, fn: Callable[..., T], *args: Any) -> T:
        began = time.process_time()
        out = fn(*args)
        self.spent[step] += time.process_time() - began
        return out


@dataclass
class Pair:
    """A proposer and a validator of the same network, opened in this process."""

    proposer: Node
    validator: Node
    keys: list[PrivateKey]
    height: int = 0
    last_cert: CommitCertificate | None = None

    @property
    def chain_id(self) -> str:
        return self.proposer.genesis.chain_id

    def close(self) -> None:
        self.proposer.store.close()
        self.validator.store.close()


def open_pair(home: str, validators: int) -> Pair:
    network = layout.generate(
        home, validators, chain_id="cityledger-bench", genesis_time_ms=int(time.time() * 1000)
    )
    nodes = [open_node(n.home) for n in network.nodes[:2]]
    keys = [read_key_file(Home(n.home).key, None) for n in network.nodes]
    return Pair(nodes[0], nodes[1], keys)


def run_stages(opts: StageOptions) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="cityledger-stages-")
    try:
        pair = open_pair(os.path.join(home, "net"), max(2, opts.validators))
        try:
            work = build_workload(
                pair.chain_id,
                int(time.time() * 1000),
                1,
                opts.txs,
                name=opts.workload,
                seed=opts.seed,
            )
            for phase in work.setup:
                _load(pair, phase)
            clock = Clock()
            with settled():  # the collector as a started node sets it (node/collector.py)
                committed = _timed(pair, work, opts.block_txs, clock)
        finally:
            pair.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return _report(opts, clock, committed)


def _load(pair: Pair, txs: Sequence[Transaction]) -> None:
    """Commit untimed transactions (the setup) on both nodes."""
    for tx in txs:
        pair.proposer.mempool.add(tx)
        pair.validator.mempool.add(tx)
    while len(pair.proposer.mempool):
        _block(pair, Clock())


def _timed(pair: Pair, work: Workload, block_txs: int, clock: Clock) -> int:
    """Push the valid items through, ``block_txs`` at a time; returns transactions committed."""
    valid = [item.raw for item in work.items if item.valid]
    p, v = pair.proposer, pair.validator
    committed = 0
    for start in range(0, len(valid), block_txs):
        body = encode({"txs": valid[start : start + block_txs]})
        txs = clock.time("api_decode", _api_decode, body)
        clock.time("verify", _verify, txs)
        for tx in txs:
            p.sigs.add(tx)
        clock.time("admit", _admit, p, txs)
        frame = clock.time("gossip_encode", encode_message, TxBatch(tuple(txs)))
        got = clock.time("gossip_decode", decode_message, frame, FRAME_MAX)
        assert isinstance(got, TxBatch)
        for tx in got.txs:
            v.sigs.add(tx)
        _admit(v, got.txs)
        while len(p.mempool):
            committed += _block(pair, clock)
    return committed


def _verify(txs: Sequence[Transaction]) -> None:
    """Each transaction's signature and the one in its payload, if any (a meter's over
    its reading): what a node's signature worker checks on admission, recording the
    payload's verdict for execution (node/sigcache.py)."""
    for tx in txs:
        tx.verify_signature()
        found = payload_signature(tx)
        if found is not None:
            key, signature, signed = found
            nacl.bindings.crypto_sign_open(signature + signed, key)
            GOOD.add(verdict_key(key, signature, signed))


def _admit(node: Node, txs: Sequence[Transaction]) -> None:
    for tx in txs:
        node.mempool.add(tx)


def _api_decode(body: bytes) -> list[Transaction]:
    doc = decode(body)
    assert isinstance(doc, dict)
    items = doc["txs"]
    assert isinstance(items, list)
    return [Transaction.decode(raw) for raw in items if isinstance(raw, bytes)]


def _block(pair: Pair, clock: Clock) -> int:
    """One height: build, propose, validate, vote, commit on both nodes."""
    p, v = pair.proposer, pair.validator
    params = p.genesis.consensus
    txs = p.mempool.reap(params.max_block_txs, params.max_block_bytes)
    now = int(time.time() * 1000)
    built = clock.time("build", p.executor.build_block, txs, now, p.key.public_key, pair.last_cert)
    block = built.block
    proposal = Proposal.create(p.key, pair.chain_id, block.height, 0, block.hash, -1)
    frame = clock.time("proposal_encode", encode_message, ProposalMsg(proposal, block))
    msg = clock.time("proposal_decode", decode_message, frame, FRAME_MAX)
    assert isinstance(msg, ProposalMsg)
    theirs = clock.time("validate", v.executor.validate_block, msg.block, now + 1000)
    cert = clock.time("votes", _votes, pair, block.height, block.hash)
    clock.time("commit", _commit, p, built, cert)
    clock.time("commit", _commit, v, theirs, cert)
    clock.time("recheck", p.mempool.recheck)
    v.mempool.recheck()
    pair.last_cert = cert
    return len(txs)


def _votes(pair: Pair, height: int, block_hash: bytes) -> CommitCertificate:
    precommits = []
    for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
        for key in pair.keys:
            vote = Vote.create(key, pair.chain_id, vote_type, height, 0, block_hash)
            vote.verify_signature(pair.chain_id)
            if vote_type is VoteType.PRECOMMIT:
                precommits.append(vote)
    return CommitCertificate.from_votes(precommits)


def _commit(node: Node, executed: ExecutedBlock, cert: CommitCertificate) -> None:
    node.executor.commit(executed, cert)
    node.mempool.update(executed.block.txs)


def _report(opts: StageOptions, clock: Clock, committed: int) -> dict[str, Any]:
    n = max(2, opts.validators)
    per_tx = {k: 1e6 * v / max(1, committed) for k, v in clock.spent.items()}
    per_tx["commit"] = per_tx.get("commit", 0.0) / 2  # measured on both nodes
    votes_per_node = per_tx.get("votes", 0.0) / n  # all signatures made, checked by one node
    network_us = (
        sum(n * per_tx.get(s, 0.0) for s in PER_NODE)
        + sum(per_tx.get(s, 0.0) for s in ONCE)
        + sum((n - 1) * per_tx.get(s, 0.0) for s in PER_VALIDATOR)
        + n * votes_per_node
    )
    validator_us = sum(per_tx.get(s, 0.0) for s in PER_NODE + PER_VALIDATOR) + votes_per_node
    c = cores()
    return {
        "options": vars(opts),
        "code": compiled.describe(),  # mypyc-compiled modules or pure Python
        "committed": committed,
        "us_per_tx": {k: round(v, 1) for k, v in sorted(per_tx.items(), key=lambda x: -x[1])},
        "validator_us_per_tx": round(validator_us, 1),
        "network_ms_per_tx": round(network_us / 1000, 3),
        "cores": c,
        "cpu_bound_tps": round(min(c * 1e6 / network_us, 1e6 / validator_us), 1),
    }
