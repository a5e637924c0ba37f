"""Storage corruption in a stopped node's LevelDB: flipped bytes and truncated files
(tables ``*.ldb``, the write-ahead ``*.log``, ``MANIFEST-*``).

Acceptable outcomes, and nothing else: the node refuses to start with a clear
one-line message (no traceback), or it starts and recovers (from its own store
and its peers). Either way it must never serve or sign wrong data: its blocks
must match the honest nodes', it must not double-sign (the witness and the
certificates are checked), and ``audit`` must pass on its store afterwards. A
node that refused is then given its backup copy back, or an empty store
(``cityledger node init-store``) — what an operator does — and must rebuild the
chain from its peers. A damaged record must be caught by LevelDB's checksums
(F3): the node answers 503 for it rather than serve what the store returned, and
stops itself with one clear line (F4) — found by catch-up or by a read — after
which the operator's remedy is applied and every invariant is checked again.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plyvel
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.conftest import ClusterFactory
from tests.e2e.invariants import InvariantViolation
from tests.e2e.scenario import finish, start_load

START_WATCH_S = 15.0
# What check_no_fork says about a node that serves what its damaged store returned (F3).
WRONG_DATA = ("bad certificate", "FORK", "not the agreed", "block_hash is not")
CLEAR_MESSAGE = re.compile(
    r"corrupt|cannot open the database|checksum|damaged|no ledger store", re.IGNORECASE
)


def _files(data: Path, pattern: str) -> list[Path]:
    return sorted(p for p in data.glob(pattern) if p.stat().st_size > 0)


def _flip(path: Path, rng: random.Random, count: int = 16) -> str:
    raw = bytearray(path.read_bytes())
    lo = 64 if len(raw) > 4096 else 0  # in a big file, past the header: hit records
    for _ in range(count):
        i = rng.randrange(lo, len(raw))
        raw[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(raw))
    return f"flipped {count} bits in {path.name} ({len(raw)} bytes)"


def _truncate(path: Path, rng: random.Random) -> str:
    size = path.stat().st_size
    keep = rng.randrange(size // 4, max(size // 4 + 1, size * 3 // 4))
    with open(path, "r+b") as f:
        f.truncate(keep)
    return f"truncated {path.name} from {size} to {keep} bytes"


def _largest(data: Path, pattern: str) -> Path:
    files = _files(data, pattern)
    if not files:
        raise FileNotFoundError(f"no {pattern} in {data}")
    return max(files, key=lambda p: p.stat().st_size)


Corruption = Callable[[Path, random.Random], str]
CORRUPTIONS: dict[str, Corruption] = {
    "ldb-flip": lambda d, r: _flip(_largest(d, "*.ldb"), r),
    "ldb-truncate": lambda d, r: _truncate(_largest(d, "*.ldb"), r),
    "log-flip": lambda d, r: _flip(_largest(d, "*.log"), r, 4),
    "log-truncate": lambda d, r: _truncate(_largest(d, "*.log"), r),
    "manifest-flip": lambda d, r: _flip(_largest(d, "MANIFEST-*"), r, 4),
    "manifest-truncate": lambda d, r: _truncate(_largest(d, "MANIFEST-*"), r),
}


def _wipe(data: Path) -> None:
    """The rebuild remedy, as an operator does it: delete the data directory and create
    an empty store (`cityledger node init-store`); the node rebuilds from its peers."""
    shutil.rmtree(data)
    subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "init-store", "--home", str(data.parent)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _ensure_tables(data: Path) -> None:
    """Reopen the stopped store once, as the node itself would on start: LevelDB turns
    its write-ahead log into a table, so there is an ``.ldb`` file to damage."""
    if not _files(data, "*.ldb"):
        db = plyvel.DB(str(data))
        db.compact_range()
        db.close()


def _corrupt_and_restart(
    cluster: Cluster, victim: str, kind: str, seed: int, remedy: str
) -> dict[str, Any]:
    """Stop ``victim``, damage its store, start it. A refusal is then remedied the way
    an operator would: ``restore`` puts back the copy taken before the damage (a
    backup), ``wipe`` empties the data directory (rebuild from the peers)."""
    rng = random.Random(seed)
    data = Path(cluster.entry(victim).home) / "data"
    backup = data.with_name("data.backup")
    cluster.stop_node(victim)
    if kind.startswith("ldb"):
        _ensure_tables(data)
    if kind.startswith("log") and not _files(data, "*.log"):
        # The node writes its log while it runs; after a clean stop it is still there.
        pytest.skip("no write-ahead log left to corrupt")
    shutil.copytree(data, backup)
    what = CORRUPTIONS[kind](data, rng)
    log_mark = len(cluster.log_text(victim))
    started = time.monotonic()
    cluster.start_node(victim)
    others = [n for n in cluster.names if n != victim]
    target = cluster.max_height(others)
    cluster.wait(
        lambda: not cluster.running(victim) or cluster.height(victim) >= target, START_WATCH_S
    )
    after = cluster.log_text(victim)[log_mark:]
    first = next((line for line in after.splitlines() if "API on" in line), "")
    if cluster.running(victim):
        return {
            "corruption": what,
            "outcome": "started",
            "start_line": first[first.find("height") :],
            "started_s": time.monotonic() - started,
        }
    tail = after.strip().splitlines()[-1] if after.strip() else ""
    assert "Traceback" not in after, f"F5: {kind}: the node died with a traceback:\n{after[-3000:]}"
    assert CLEAR_MESSAGE.search(after), f"{kind}: refused without a clear message:\n{after[-2000:]}"
    _remedy(data, remedy)
    started = time.monotonic()
    cluster.start_node(victim)
    return {
        "corruption": what,
        "outcome": f"refused, {remedy}",
        "message": tail[-200:],
        "started_s": time.monotonic() - started,
    }


def _scenario(make_cluster: ClusterFactory, seed: int, kind: str, remedy: str) -> None:
    rng = random.Random(seed)
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=25, rate_per_s=25)
    time.sleep(4)
    victim = rng.choice(cluster.names)
    outcome = _corrupt_and_restart(cluster, victim, kind, seed, remedy)
    caught_up = cluster.wait_caught_up(victim, 45)
    if caught_up is None and _stopped_on_damage(cluster, victim):
        # F4: catch-up found the damage; the node said so and stopped, blaming no peer.
        outcome["outcome"] += f", stopped on damage in catch-up, {remedy}"
        caught_up = _remedy_and_restart(cluster, victim, remedy)
    assert caught_up is not None, f"{victim} did not rejoin after {outcome}:\n{cluster.logs(20)}"
    name = f"storage-{kind}-{remedy}"
    try:
        finish(cluster, load, name, victim=victim, catch_up_s=round(caught_up, 2), **outcome)
    except InvariantViolation as exc:
        text = str(exc)
        assert not any(sign in text for sign in WRONG_DATA), f"F3: wrong data served: {text}"
        if not (_only_names(text, victim, cluster.names) and _stopped_on_damage(cluster, victim)):
            raise
        # F4: the checks' reads found the damage; the node answered 503 and stopped itself.
        # The operator's remedy, then every invariant again on the repaired node.
        caught_up = _remedy_and_restart(cluster, victim, remedy)
        assert caught_up is not None, f"{victim} did not rejoin after the remedy"
        outcome["outcome"] += f", stopped on damage found by a read ({text[:120]}), {remedy}"
        finish(cluster, load, name, victim=victim, catch_up_s=round(caught_up, 2), **outcome)


def _stopped_on_damage(cluster: Cluster, victim: str) -> bool:
    """The victim stopped itself, saying its own store is damaged (F4), within 10 s."""
    cluster.wait(lambda: not cluster.running(victim), 10)
    return not cluster.running(victim) and "local store is damaged" in cluster.log_text(victim)


def _remedy_and_restart(cluster: Cluster, victim: str, remedy: str) -> float | None:
    data = Path(cluster.entry(victim).home) / "data"
    _remedy(data, remedy)
    cluster.start_node(victim)
    return cluster.wait_caught_up(victim, 45)


def _remedy(data: Path, remedy: str) -> None:
    """What an operator does with a damaged store: ``restore`` the backup copy taken
    before the damage, or ``wipe`` it to rebuild from the peers."""
    if remedy == "restore":
        shutil.rmtree(data)
        shutil.copytree(data.with_name("data.backup"), data)
    else:
        _wipe(data)


def _only_names(text: str, victim: str, names: list[str]) -> bool:
    return victim in text and not any(n in text for n in names if n != victim)


@pytest.mark.full
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@pytest.mark.parametrize("remedy", ["restore", "wipe"])
def test_storage_corruption(
    make_cluster: ClusterFactory, seed: int, kind: str, remedy: str
) -> None:
    _scenario(make_cluster, seed, kind, remedy)


@pytest.mark.full
def test_missing_current_file(make_cluster: ClusterFactory, seed: int) -> None:
    """LevelDB's CURRENT names the live MANIFEST; without it, the store must not be
    silently recreated empty (the node would start over from genesis, its ledger and
    its double-sign guard gone)."""
    cluster = make_cluster()
    load = start_load(cluster, seed, max_seconds=15)
    time.sleep(4)
    victim = random.Random(seed).choice(cluster.names)
    before = cluster.height(victim)
    cluster.stop_node(victim)
    data = Path(cluster.entry(victim).home) / "data"
    _ensure_tables(data)  # most of the store in tables that only the MANIFEST names
    os.unlink(data / "CURRENT")
    log_mark = len(cluster.log_text(victim))
    cluster.start_node(victim)
    cluster.wait(lambda: not cluster.running(victim) or cluster.height(victim) >= 0, START_WATCH_S)
    after = cluster.log_text(victim)[log_mark:]
    assert not cluster.running(victim), (
        f"F11: without CURRENT the node started (at height {before} before), on a new "
        f"empty store:\n{after[-2000:]}"
    )
    assert "Traceback" not in after, after[-3000:]
    assert "no ledger store at" in after, after[-2000:]
    _wipe(data)
    cluster.start_node(victim)
    caught_up = cluster.wait_caught_up(victim, 45)
    assert caught_up is not None
    finish(cluster, load, "storage-missing-CURRENT", victim=victim, outcome="refused, wipe")


@pytest.mark.full
def test_a_validator_that_lost_its_store_must_not_sign_again(
    make_cluster: ClusterFactory, seed: int
) -> None:
    """The strongest form of the wipe remedy: the validator whose data directory was
    emptied comes back while it cannot reach its peers for a few seconds (a slow
    network at start-up). It must not sign anything at heights it signed before."""
    cluster = make_cluster(transport="relay")
    assert cluster.relay is not None
    load = start_load(cluster, seed, max_seconds=25)
    time.sleep(6)
    victim = random.Random(seed).choice(cluster.names)
    cluster.stop_node(victim)
    _wipe(Path(cluster.entry(victim).home) / "data")
    cluster.relay.isolate(victim)
    cluster.start_node(victim)
    time.sleep(5)
    cluster.relay.heal()
    caught_up = cluster.wait_caught_up(victim, 45)
    assert caught_up is not None
    # F2: the signer state lives outside data/, and a validator signs only once
    # caught up; a double-sign here fails.
    finish(cluster, load, "storage-wiped-and-isolated", victim=victim)
