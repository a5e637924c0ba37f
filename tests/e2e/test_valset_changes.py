"""Validator-set changes in real processes (issue 18), each ending with every invariant
of the fault suite — no fork (certificates checked against the set in force at each
height, from genesis), nothing acknowledged lost, no honest double-sign, and
``audit verify`` of every node's store from genesis:

* a validator's consensus key is rotated under load: ``node rotate-key``, a
  ``validator-rotate`` vote, and the running node switches by itself; from the effective
  height certificates carry the new key and never the old, and precommits someone still
  signs with the old key are ignored;
* a validator is cut off, a fifth validator is voted in on the majority side, the
  partition heals: the cut-off validator catches up through the change and signs
  certificates under the new set;
* a fifth validator joins while the load runs near what the network commits: committed
  tx/s before, around and after the effective height (docs/performance.md, issue 18).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from ledger.crypto import PrivateKey
from ledger.keyfile import read_key_file
from ledger.votes import NIL, Vote, VoteType
from node.config import Home
from node.rotation import retired_dir
from node.wire import VoteMsg, encode_message
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import ClusterFactory
from tests.e2e.flood import Flood
from tests.e2e.hostile import HostilePeer
from tests.e2e.invariants import assert_recovers, audit_all, check_all
from tests.e2e.scenario import finish, record, start_load
from tests.e2e.valsets import (
    LOADERS,
    PROPOSER,
    cli,
    committed_rate,
    join_observer,
    signers,
    vote,
    wait_all_signed,
)
from tests.e2e.witness import INTRUDER_KEY


def _first_signed(
    cluster: Cluster, via: str, key: bytes, start: int, timeout_s: float
) -> int | None:
    """The first height >= ``start`` whose certificate ``key`` signed (waits for it)."""
    found: list[int] = []
    checked = [start - 1]

    def signed() -> bool:
        top = cluster.height(via)
        for h in range(checked[0] + 1, top + 1):
            checked[0] = h
            if key in signers(cluster, via, h):
                found.append(h)
                return True
        return False

    return found[0] if cluster.wait(signed, timeout_s, interval=0.5) else None


def _wait_height(cluster: Cluster, names: list[str], above: int, timeout_s: float) -> None:
    ok = cluster.wait(lambda: cluster.min_height(names) > above, timeout_s)
    assert ok, f"{names} did not pass height {above}: {cluster.heights(names)}\n{cluster.logs(20)}"


# --- 1. key rotation -------------------------------------------------------------------------


@pytest.mark.full
def test_a_rotated_key_takes_over_the_seat_and_the_old_key_is_ignored(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=50, senders=LOADERS)
    via, rotated = cluster.names[0], cluster.names[1 + seed % 3]
    old = cluster.keys[rotated]
    wait_all_signed(cluster, via, list(cluster.keys.values()))
    made = cli("node", "rotate-key", "--home", cluster.entry(rotated).home)
    new = bytes.fromhex(made["public_key"])
    decided = vote(cluster, via, "validator-rotate", "--public-key", old.hex(),
                   "--new-key", made["key_file"])  # fmt: skip
    effective = decided + 2
    started = time.monotonic()
    answers = cluster.wait(
        lambda: (cluster.status(rotated) or {}).get("public_key") == new.hex(), 30
    )
    assert answers, f"{rotated} did not reopen under its new key\n{cluster.logs(30)}"
    switched_s = time.monotonic() - started
    cluster.rekeyed(rotated, new, effective)
    first = _first_signed(cluster, via, new, effective, 40)
    assert first is not None, f"the new key signed no certificate\n{cluster.logs(30)}"
    old_key = read_key_file(os.path.join(retired_dir_of(cluster, rotated, old), "node_key.json"))
    assert old_key.public_key == old
    sent = _old_key_keeps_voting(cluster, old_key, seconds=6)
    _wait_height(cluster, cluster.names, first + 5, 30)
    top = cluster.min_height(cluster.names)
    before = set().union(
        *(signers(cluster, via, h) for h in range(max(1, effective - 4), effective))
    )
    assert old in before, "the old key signed before the effective height"
    carried = [h for h in range(effective, top + 1) if old in signers(cluster, via, h)]
    assert not carried, f"the old key's precommits counted at heights {carried}"
    finish(cluster, load, "valset-rotate", rotated=rotated, effective_height=effective,
           first_signed=first, switched_s=round(switched_s, 2),
           old_key_votes_sent=sent)  # fmt: skip


def retired_dir_of(cluster: Cluster, name: str, key: bytes) -> str:
    return retired_dir(Home(cluster.entry(name).home), key)


def _old_key_keeps_voting(cluster: Cluster, old: PrivateKey, seconds: float) -> int:
    """For ``seconds``, votes signed by the rotated-out key (what a stolen old key could
    try) for each newly committed block and for the height after it, sent to every node
    over an observer's link."""
    peers = [HostilePeer(e.p2p, INTRUDER_KEY, cluster.chain_id) for e in cluster.nodes]
    sent, done = 0, set[int]()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            top = cluster.height(cluster.names[0])
            if top > 0 and top not in done:
                done.add(top)
                answer = cluster.get_canonical(cluster.names[0], f"/v1/blocks/{top}/certificate")
                cert = answer["certificate"]
                # the block just committed (late votes a proposer could carry in its
                # last_cert) and nil at the height being decided (counted, they would
                # add the old key's power to a round)
                wheres = [(top, cert["round"], cert["block_hash"]), (top + 1, 0, NIL)]
                votes = [
                    Vote.create(old, cluster.chain_id, kind, *where)
                    for where in wheres
                    for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT)
                ]
                for peer in peers:
                    for v in votes:
                        sent += peer.send(encode_message(VoteMsg(v)))
            time.sleep(0.2)
    finally:
        for peer in peers:
            peer.close()
    return sent


# --- 2. a change lands while a partition heals ------------------------------------------------


@pytest.mark.full
def test_a_validator_cut_off_during_a_change_follows_the_new_set_after_the_heal(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = make_cluster(transport="relay")
    assert cluster.relay is not None
    newcomer = "seoul-4"
    originals = cluster.names[:]
    key = join_observer(cluster, newcomer)
    _wait_height(cluster, [newcomer], 1, 30)
    load = start_load(cluster, seed, max_seconds=70, senders=LOADERS)
    via = originals[0]
    victim = random.Random(seed).choice(originals[1:])
    wait_all_signed(cluster, via, [cluster.keys[n] for n in originals])
    cluster.relay.partition([{victim}, set(cluster.names) - {victim}], "blackhole")
    assert_recovers(cluster, [n for n in cluster.names if n != victim])
    decided = vote(cluster, via, "validator-add", "--public-key", key.hex(), "--name", newcomer,
                   "--power", "1", "--org", PROPOSER)  # fmt: skip
    effective = decided + 2
    first = _first_signed(cluster, via, key, effective, 40)
    assert first is not None, f"the new validator signed nothing\n{cluster.logs(30)}"
    cut_at = cluster.height(victim)
    assert cut_at < decided, f"{victim} saw the change ({cut_at} >= {decided}): not cut off"
    cluster.relay.heal()
    healed = time.monotonic()
    caught_up = cluster.wait_caught_up(victim, 40)
    assert caught_up is not None, f"{victim} did not catch up\n{cluster.logs(30)}"
    heal_height = cluster.max_height()
    both = _first_signed_by_all(cluster, via, {cluster.keys[victim], key}, heal_height, 40)
    assert both is not None, f"{victim} signs no certificate under the new set\n{cluster.logs(30)}"
    finish(cluster, load, "valset-add-during-partition", victim=victim, cut_at=cut_at,
           effective_height=effective, first_signed_new=first,
           victim_signed_new_set_at=both, heal_to_sign_s=round(time.monotonic() - healed, 2),
           catch_up_s=round(caught_up, 2))  # fmt: skip


def _first_signed_by_all(
    cluster: Cluster, via: str, keys: set[bytes], start: int, timeout_s: float
) -> int | None:
    found: list[int] = []
    checked = [start]

    def signed() -> bool:
        for h in range(checked[0] + 1, cluster.height(via) + 1):
            checked[0] = h
            if keys <= signers(cluster, via, h):
                found.append(h)
                return True
        return False

    return found[0] if cluster.wait(signed, timeout_s, interval=0.5) else None


# --- 3. the throughput dip while a validator joins at capacity --------------------------------

WINDOW_BLOCKS = 6
OFFERED = 600  # tx/s: more than these nodes commit on two cores, so a backlog builds


@pytest.mark.full
def test_throughput_before_around_and_after_a_validator_joins_under_heavy_load(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = make_cluster()
    newcomer = "seoul-4"
    key = join_observer(cluster, newcomer)
    _wait_height(cluster, [newcomer], 1, 30)
    via = cluster.names[0]
    wait_all_signed(cluster, via, [k for n, k in cluster.keys.items() if n != newcomer])
    flood = Flood(cluster, via, senders=LOADERS, per_sender=8000, batch=100, rate_per_s=OFFERED,
                  max_seconds=60).start()  # fmt: skip
    try:
        figures = _join_at_capacity(cluster, via, newcomer, key)
    finally:
        flood.stop()
    figures["offered_tx_s"], figures["accepted"] = OFFERED, len(flood.accepted)
    print(f"\njoin at capacity: {figures}")
    record("valset-join-at-capacity-rates", **figures)
    drained = cluster.wait(lambda: all((cluster.status(n) or {}).get("mempool", 1) == 0
                                       for n in cluster.names), 90)  # fmt: skip
    assert drained, f"the accepted load never committed: {cluster.heights()}"
    # every node: no fork, every accepted transaction in the chain once, 200 receipts'
    # proofs each, no double-sign; then the audit from genesis of the node the load went
    # to and of the newcomer (all five would take minutes on two cores)
    summary = check_all(cluster, dict.fromkeys(flood.accepted, 0), receipts=200, audit=False)
    cluster.stop_all()
    audit_all(cluster, [via, newcomer], summary)
    print(f"valset-join-at-capacity: {summary.line()}; checks {summary.timings}")


def _join_at_capacity(cluster: Cluster, via: str, newcomer: str, key: bytes) -> dict[str, Any]:
    """Vote ``newcomer`` in once the load is steady; committed tx/s over the blocks
    before the vote, around the effective height, and after the first certificate the
    new validator signed."""
    _wait_height(cluster, [via], cluster.height(via) + 8, 60)  # a steady load first
    backlog = (cluster.status(via) or {}).get("mempool")
    decided = vote(cluster, via, "validator-add", "--public-key", key.hex(), "--name", newcomer,
                   "--power", "1", "--org", PROPOSER)  # fmt: skip
    approved = time.monotonic()
    effective = decided + 2
    first = _first_signed(cluster, via, key, effective, 60)
    assert first is not None, f"the new validator signed nothing\n{cluster.logs(30)}"
    took = time.monotonic() - approved
    _wait_height(cluster, [via], first + WINDOW_BLOCKS + 1, 90)

    def rate(a: int, b: int) -> float:
        return round(committed_rate(cluster, via, a, b), 1)

    return {
        "before_tx_s": rate(decided - WINDOW_BLOCKS, decided),
        "around_tx_s": rate(effective - 3, first + 1),
        "after_tx_s": rate(first + 1, first + 1 + WINDOW_BLOCKS),
        "mempool_at_vote": backlog,
        "approval_to_first_signature_s": round(took, 1),
        "decided": decided,
        "effective_height": effective,
        "first_signed": first,
    }
