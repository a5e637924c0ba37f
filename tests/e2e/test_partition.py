"""Partitions (2|2 and 1|3) and bad links (loss, delay, duplication, reordering).

Two ways to cut the network, same scenarios:

* the fault-injecting relay (:mod:`tests.e2e.relay`): no privileges needed, acts on
  whole peer frames — the default, and what ``make test`` runs;
* Linux network namespaces (:mod:`tests.e2e.netns`): real blackhole routes between
  real interfaces, when the suite runs as root with iproute2 (``netns`` marker).
  ``tc netem`` needs the sch_netem kernel module, which is often missing in
  containers, so loss/duplication/reordering always go through the relay.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e import netns
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import ClusterFactory
from tests.e2e.invariants import assert_recovers
from tests.e2e.relay import LinkPolicy
from tests.e2e.scenario import finish, start_load

PARTITION_S = 10.0


def _cut(cluster: Cluster, groups: list[set[str]], mode: str) -> None:
    if cluster.netns is not None:
        cluster.netns.partition([{cluster.index(n) for n in g} for g in groups])
    else:
        assert cluster.relay is not None
        cluster.relay.partition(groups, mode)


def _heal(cluster: Cluster) -> None:
    if cluster.netns is not None:
        cluster.netns.heal()
    else:
        assert cluster.relay is not None
        cluster.relay.heal()


def _partition_scenario(
    cluster: Cluster,
    seed: int,
    sizes: tuple[int, int],
    mode: str,
    scenario: str,
    hold_s: float = PARTITION_S,
) -> None:
    rng = random.Random(seed)
    load = start_load(cluster, seed, max_seconds=hold_s + 15)
    time.sleep(2)
    names = cluster.names[:]
    rng.shuffle(names)
    minority, majority = set(names[: sizes[0]]), set(names[sizes[0] :])
    _cut(cluster, [minority, majority], mode)
    started = time.monotonic()
    progress_s = None
    if len(majority) >= 3:  # a quorum: it keeps committing, the minority cannot
        progress_s = assert_recovers(cluster, sorted(majority))
    time.sleep(1.5)  # what was certified before the cut may still land
    frozen = cluster.heights(sorted(minority if len(majority) >= 3 else names))
    time.sleep(max(0.0, hold_s - (time.monotonic() - started)))
    assert cluster.heights(sorted(frozen)) == frozen, f"committed without a quorum: {frozen}"
    _heal(cluster)
    recovery = assert_recovers(cluster)
    finish(
        cluster,
        load,
        scenario,
        minority=sorted(minority),
        majority_progress_s=None if progress_s is None else round(progress_s, 2),
        recovery_s=round(recovery, 2),
    )


def test_relay_partition_1_3_blackhole(make_cluster: ClusterFactory, seed: int) -> None:
    cluster = make_cluster(transport="relay")
    _partition_scenario(cluster, seed, (1, 3), "blackhole", "relay-1|3-blackhole", hold_s=6)


@pytest.mark.full
@pytest.mark.parametrize("mode", ["reset", "blackhole"])
def test_relay_partition_2_2(make_cluster: ClusterFactory, seed: int, mode: str) -> None:
    cluster = make_cluster(transport="relay")
    _partition_scenario(cluster, seed, (2, 2), mode, f"relay-2|2-{mode}")


@pytest.mark.full
def test_relay_partition_1_3_reset(make_cluster: ClusterFactory, seed: int) -> None:
    cluster = make_cluster(transport="relay")
    _partition_scenario(cluster, seed, (1, 3), "reset", "relay-1|3-reset")


@pytest.mark.full
def test_relay_long_blackhole_outlives_the_links(make_cluster: ClusterFactory, seed: int) -> None:
    """30 s of silence — longer than the WebSocket heartbeat, so every link of the
    isolated node dies and is re-dialled into the void. Once the network heals, those
    dials must give up and retry (F6), not wait for aiohttp's 5-minute timeout."""
    cluster = make_cluster(transport="relay")
    _partition_scenario(cluster, seed, (1, 3), "blackhole", "relay-1|3-blackhole-30s", hold_s=30)


@pytest.mark.full
def test_relay_flapping_partitions(make_cluster: ClusterFactory, seed: int) -> None:
    """A new random partition every 2-4 s for 30 s, then healed."""
    rng = random.Random(seed)
    cluster = make_cluster(transport="relay")
    load = start_load(cluster, seed, max_seconds=40)
    assert cluster.relay is not None
    deadline = time.monotonic() + 30
    cuts = 0
    while time.monotonic() < deadline:
        names = cluster.names[:]
        rng.shuffle(names)
        k = rng.choice([1, 2])
        cluster.relay.heal()
        cluster.relay.partition(
            [set(names[:k]), set(names[k:])], rng.choice(["reset", "blackhole"])
        )
        cuts += 1
        time.sleep(rng.uniform(2, 4))
    cluster.relay.heal()
    recovery = assert_recovers(cluster)
    finish(cluster, load, "relay-flapping", cuts=cuts, recovery_s=round(recovery, 2))


LINK_FAULTS = {
    "loss-10pc": LinkPolicy(drop=0.10),
    "dup-reorder": LinkPolicy(duplicate=0.2, reorder=0.2, jitter_ms=20),
    "slow-jittery": LinkPolicy(delay_ms=150, jitter_ms=150),
    "everything": LinkPolicy(drop=0.05, duplicate=0.1, reorder=0.1, delay_ms=30, jitter_ms=60),
}


@pytest.mark.full
@pytest.mark.parametrize("fault", sorted(LINK_FAULTS))
def test_bad_links_still_commit(make_cluster: ClusterFactory, seed: int, fault: str) -> None:
    # Frame faults need frames: plaintext links on loopback (TLS streams pass whole).
    cluster = make_cluster(transport="relay", settings={"p2p.tls": False})
    assert cluster.relay is not None
    load = start_load(cluster, seed, max_seconds=25)
    time.sleep(2)
    cluster.relay.set_policy(LINK_FAULTS[fault])
    start_height = cluster.max_height()
    time.sleep(15)
    under_fault = cluster.min_height() - start_height
    assert under_fault > 0, f"no block in 15 s with links {fault}"
    stats = cluster.relay.stats()
    cluster.relay.heal()
    recovery = assert_recovers(cluster)
    finish(
        cluster,
        load,
        f"links-{fault}",
        blocks_under_fault=under_fault,
        frames=stats.frames,
        dropped=stats.dropped,
        duplicated=stats.duplicated,
        reordered=stats.reordered,
        recovery_s=round(recovery, 2),
    )


def _need_netns() -> None:
    reason = netns.available()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.full
@pytest.mark.netns
@pytest.mark.parametrize("sizes", [(2, 2), (1, 3)], ids=["2|2", "1|3"])
def test_netns_partition(make_cluster: ClusterFactory, seed: int, sizes: tuple[int, int]) -> None:
    _need_netns()
    cluster = make_cluster(transport="netns")
    label = f"{sizes[0]}|{sizes[1]}"
    _partition_scenario(cluster, seed, sizes, "blackhole", f"netns-{label}")
