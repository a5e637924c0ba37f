"""Fault suite plumbing: the seed, and clusters that always stop.

``make test`` runs only the quick scenarios; the whole matrix (the ``full`` marker,
tests/conftest.py) runs with ``CITYLEDGER_FULL_FAULTS=1`` (``make faults``). Every
scenario takes its seed from ``CITYLEDGER_E2E_SEED`` or draws one, and prints it, so a
failure can be replayed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("CITYLEDGER_E2E_SEED", "0")) or random.randrange(1, 2**31)
    print(f"fault suite seed: {value} (replay with CITYLEDGER_E2E_SEED={value})")
    return value


ClusterFactory = Callable[..., Cluster]


CLUSTERS = pytest.StashKey[list[Cluster]]()


@pytest.fixture
def make_cluster(
    tmp_path: Path, seed: int, request: pytest.FixtureRequest
) -> Iterator[ClusterFactory]:
    """Start clusters under ``tmp_path``; every one is closed (by pid) at teardown."""
    started: list[Cluster] = []
    request.node.stash[CLUSTERS] = started

    def make(validators: int = 4, **kwargs: object) -> Cluster:
        cluster = Cluster(
            str(tmp_path / f"net{len(started)}"),
            validators,
            seed=seed,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(cluster)
        return cluster.start()

    try:
        yield make
    finally:
        for cluster in started:
            cluster.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the end of every node's log to the report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    for cluster in item.stash.get(CLUSTERS, []):
        if cluster.network is not None:
            report.sections.append((f"node logs ({cluster.home})", cluster.logs(60)))
