"""A byzantine validator among four: it signs two conflicting versions of every
proposal and vote and sends each to a different half of its peers
(``Faults(byzantine="equivocate")``: tests/e2e/launcher.py patches the node's send
path; the node itself has no such mode).

With f = 1 this is within what the protocol tolerates: the honest three must never
fork, must keep committing, and must commit the equivocation as evidence in blocks,
listed as committed by ``/v1/evidence`` on every honest node; no evidence may name an
honest one.
"""

from __future__ import annotations

import random
import time

import pytest

from devnet.layout import CITIES
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import ClusterFactory
from tests.e2e.invariants import assert_recovers
from tests.e2e.launcher import Faults
from tests.e2e.scenario import finish, start_load

EVIDENCE_BOUND_S = 30.0


def _evidence_against(cluster: Cluster, name: str, offender: str) -> int:
    """Pieces against ``offender`` committed on the chain, as ``name`` lists them."""
    key = cluster.keys[offender].hex()
    answer = cluster.get(name, "/v1/evidence")
    return sum(
        1
        for item in answer.get("evidence", [])
        if item.get("status") == "committed" and item.get("offender") == key
    )


def _byzantine_network(make_cluster: ClusterFactory, seed: int, **kwargs: object) -> Cluster:
    index = random.Random(seed).randrange(4)
    byzantine = f"{CITIES[index]}-{index}"  # devnet.layout names nodes "<city>-<i>"
    cluster = make_cluster(faults={byzantine: Faults(byzantine="equivocate")}, **kwargs)
    assert byzantine in cluster.names
    cluster.faulty.add(byzantine)
    return cluster


def _run(cluster: Cluster, seed: int, seconds: float, scenario: str) -> None:
    (byzantine,) = cluster.faulty
    honest = cluster.honest()
    load = start_load(cluster, seed, max_seconds=seconds)
    progress = assert_recovers(cluster, honest)
    started = time.monotonic()
    seen = cluster.wait(
        lambda: all(_evidence_against(cluster, n, byzantine) > 0 for n in honest),
        EVIDENCE_BOUND_S,
        interval=0.5,
    )
    evidence_s = time.monotonic() - started
    assert "byzantine: equivocating" in cluster.log_text(byzantine), "the attack never started"
    assert seen, "evidence did not reach every honest node: " + str(
        {n: _evidence_against(cluster, n, byzantine) for n in honest}
    )
    time.sleep(max(0.0, seconds - evidence_s - progress))
    counts = {n: _evidence_against(cluster, n, byzantine) for n in honest}
    summary = finish(
        cluster,
        load,
        scenario,
        byzantine=byzantine,
        evidence_on_honest=counts,
        evidence_within_s=round(evidence_s, 2),
    )
    assert summary.evidence_offenders == {byzantine}, summary.evidence_offenders
    if cluster.witness is not None:
        assert summary.equivocators == {byzantine}, summary.equivocators


def test_equivocating_validator_cannot_fork_and_is_reported(
    make_cluster: ClusterFactory, seed: int
) -> None:
    cluster = _byzantine_network(make_cluster, seed)
    _run(cluster, seed, 10.0, "byzantine-equivocate")


@pytest.mark.full
def test_equivocating_validator_over_a_lossy_relay(make_cluster: ClusterFactory, seed: int) -> None:
    """The attacker plus a network that drops, duplicates and reorders frames: plaintext
    links on loopback, since the relay cannot cut TLS streams into frames."""
    from tests.e2e.relay import LinkPolicy

    cluster = _byzantine_network(make_cluster, seed, transport="relay", settings={"p2p.tls": False})
    assert cluster.relay is not None
    cluster.relay.set_policy(LinkPolicy(drop=0.03, duplicate=0.1, reorder=0.1, jitter_ms=30))
    _run(cluster, seed, 30.0, "byzantine-equivocate-lossy")


@pytest.mark.full
def test_equivocating_validator_restarted_mid_run(make_cluster: ClusterFactory, seed: int) -> None:
    """Killing and restarting the attacker (same key, same mode) changes nothing."""
    cluster = _byzantine_network(make_cluster, seed)
    (byzantine,) = cluster.faulty
    load = start_load(cluster, seed, max_seconds=25)
    time.sleep(5)
    cluster.kill(byzantine)
    time.sleep(3)
    cluster.start_node(byzantine, Faults(byzantine="equivocate"))
    time.sleep(8)
    recovery = assert_recovers(cluster, cluster.honest())
    summary = finish(cluster, load, "byzantine-restarted", recovery_s=round(recovery, 2))
    assert summary.evidence_offenders == {byzantine}


@pytest.mark.full
def test_a_validator_withholding_its_proposals_is_waited_for_briefly(
    make_cluster: ClusterFactory, seed: int
) -> None:
    """A validator that votes at every height and never sends a proposal (within what f
    faults may do): the honest three keep committing everything, and once its turns have
    brought nothing twice in a row they await its round-0 proposals only briefly, so
    its heights, decided in round 1, no longer wait out the whole propose timeout."""
    index = random.Random(seed).randrange(4)
    withholder = f"{CITIES[index]}-{index}"
    cluster = make_cluster(faults={withholder: Faults(byzantine="withhold")})
    cluster.faulty.add(withholder)
    honest = cluster.honest()
    observer = honest[0]
    load = start_load(cluster, seed, max_seconds=30)
    assert_recovers(cluster, honest)
    time.sleep(30)
    assert "byzantine: withholding proposals" in cluster.log_text(withholder)
    for name in honest:
        assert "has not proposed at its last 2 turns" in cluster.log_text(name), name
    head = cluster.height(observer)
    turns = [h for h in range(2, head + 1) if cluster.proposer(h) == withholder]
    measured = turns[2:]  # from its third turn on: after the two it missed
    gaps, rounds = [], []
    for h in measured:
        block, before = (cluster.get(observer, f"/v1/blocks/{x}") for x in (h, h - 1))
        rounds.append(block["certificate"]["round"])
        gaps.append(block["block"]["header"]["time_ms"] - before["block"]["header"]["time_ms"])
    full_ms = cluster.get(observer, "/v1/genesis")["consensus"]["timeout_propose_ms"]
    summary = finish(cluster, load, "byzantine-withhold", withheld_gaps_ms=gaps, head=head)
    assert measured and all(r >= 1 for r in rounds), (head, turns, rounds)
    assert sorted(gaps)[len(gaps) // 2] < full_ms, (gaps, full_ms)
    assert summary.evidence_offenders == set(), "withholding is no equivocation"
