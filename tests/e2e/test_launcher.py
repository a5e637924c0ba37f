"""The fault suite's faults live in tests/e2e/launcher.py, and they still fire.

In process: each crash point's wrapper runs at the right side of the real method (the
block not written / written; the signer state durable). As processes: a node started
through the launcher exits with status 70 at every crash point, and starts again
consistent. The byzantine mode is shown by test_byzantine.py (the launcher's
announcement in the attacker's log, and evidence against it on every honest node).
"""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from ledger.storage import MemoryStore
from ledger.votes import VoteType
from node.chain import ChainStore
from node.consensus.errors import DoubleSignRefused
from node.consensus.signer import Signer
from node.executor import Executor
from node.write_behind import WriteBehind
from tests.e2e.conftest import ClusterFactory
from tests.e2e.launcher import (
    CRASH_EXIT_CODE,
    CRASH_POINTS,
    Faults,
    command,
    install_crash_point,
)
from tests.unit.node.chainkit import Kit, certify


class Crashed(Exception):
    pass


def _raise(name: str) -> None:
    raise Crashed(name)


def _keep(monkeypatch: pytest.MonkeyPatch, owner: type, method: str) -> None:
    """Have monkeypatch put the real method back after the test."""
    monkeypatch.setattr(owner, method, getattr(owner, method))


@pytest.mark.parametrize("point", ["commit.before_write", "commit.after_write"])
def test_the_commit_points_fire_on_their_side_of_the_write(
    monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    _keep(monkeypatch, Executor, "commit")
    _keep(monkeypatch, WriteBehind, "_write_next")
    base = MemoryStore()
    kit = Kit(store=WriteBehind(base))
    install_crash_point(f"{point}:2", _raise)

    def commit() -> None:  # as the consensus driver commits: written behind
        executed = kit.build([])
        kit.executor.commit(executed, certify(executed.block), behind=True)
        kit.chain.store.drain()  # type: ignore[attr-defined]

    commit()  # the first commit passes
    with pytest.raises(Crashed, match=point):
        commit()
    written = point == "commit.after_write"
    assert ChainStore(base, kit.genesis).head().height == (2 if written else 1)


def test_sign_after_persist_fires_with_the_signature_durable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _keep(monkeypatch, Signer, "_persist")
    key = PrivateKey.from_label("launcher-test-validator")
    store = MemoryStore()
    signer = Signer(key, "launcher-chain", store)
    install_crash_point("sign.after_persist", _raise)
    with pytest.raises(Crashed):
        signer.sign_vote(VoteType.PREVOTE, 5, 0, b"\x01" * 32)
    restarted = Signer(key, "launcher-chain", store)  # what the restarted node reads
    with pytest.raises(DoubleSignRefused):
        restarted.sign_vote(VoteType.PREVOTE, 5, 0, b"\x02" * 32)


def test_every_crash_point_names_a_real_method() -> None:
    import importlib

    for name, point in CRASH_POINTS.items():
        owner = getattr(importlib.import_module(point.module), point.owner)
        assert callable(getattr(owner, point.method)), name
    with pytest.raises(ValueError):
        Faults(crash_at="commit.nowhere")
    with pytest.raises(ValueError):
        Faults(byzantine="mute")
    argv = command(Faults(crash_at="sign.before_send:3"), ["node", "start", "--home", "h"])
    assert argv[1:] == [
        "-m",
        "tests.e2e.launcher",
        "--crash-at",
        "sign.before_send:3",
        "--",
        "node",
        "start",
        "--home",
        "h",
    ]


def test_a_node_process_exits_70_at_every_crash_point(make_cluster: ClusterFactory) -> None:
    """One validator (it alone signs, sends and commits every block), restarted through
    the launcher at each point in turn: each time the process must end with status 70
    and the line the launcher writes; started again honest, it resumes from its store."""
    cluster = make_cluster(1, witness=False)
    (name,) = cluster.names
    for point in CRASH_POINTS:
        before = cluster.height(name)
        cluster.restart(name, Faults(crash_at=f"{point}:2"))
        assert cluster.wait(lambda: not cluster.running(name), 60), f"{point} never fired"
        assert cluster.exit_code(name) == CRASH_EXIT_CODE, (point, cluster.logs())
        assert f"crash point {point} reached" in cluster.log_text(name)
        cluster.start_node(name)
        resumed = cluster.wait(lambda b=before: cluster.height(name) > b, 60)
        assert resumed, (point, cluster.logs())
