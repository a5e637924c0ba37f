"""ReopeningStore: the same rows as the store it reopens, and a bounded part of it mapped."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.storage import KVStore, WriteBatch, open_leveldb
from ledger.storage.reopening import ReopeningStore
from tests.unit.ledger.storage.tables_kit import write_tables

KEYS = 600


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A LevelDB store of KEYS rows under two prefixes, values of 1-300 bytes."""
    path = str(tmp_path_factory.mktemp("reopening") / "db")
    store = open_leveldb(path, create=True)
    rng = random.Random(5)
    batch = WriteBatch()
    for i in range(KEYS):
        prefix = b"a" if i % 3 else b"b"
        batch.put(prefix + i.to_bytes(4, "big"), rng.randbytes(rng.randint(1, 300)))
    store.write(batch)
    store.close()
    return path


scans = st.tuples(
    st.sampled_from([b"", b"a", b"b"]),
    st.one_of(st.none(), st.integers(0, KEYS).map(lambda i: b"a" + i.to_bytes(4, "big"))),
    st.booleans(),
)


@settings(max_examples=30, deadline=None)
@given(
    budget=st.integers(3_000, 60_000),
    first=scans,
    second=scans,
    steps=st.lists(st.integers(0, 2), max_size=400),
)
def test_interleaved_scans_and_reads_give_what_the_store_gives(
    store_dir: str,
    budget: int,
    first: tuple[bytes, bytes | None, bool],
    second: tuple[bytes, bytes | None, bool],
    steps: list[int],
) -> None:
    """Two scans and point reads, interleaved at random, through a store reopened every
    ``budget`` bytes: each scan yields exactly the keys (and values) a plain scan does."""
    plain = open_leveldb(store_dir)
    try:
        expected = [list(plain.iterate(p, start=s, reverse=r)) for p, s, r in (first, second)]
        gets = [k for k, _ in plain.iterate(b"")]
        wanted = {k: plain.get(k) for k in gets}
    finally:
        plain.close()
    store = ReopeningStore(lambda: open_leveldb(store_dir), budget_bytes=budget)
    try:
        iters = [store.iterate(p, start=s, reverse=r) for p, s, r in (first, second)]
        got: list[list[tuple[bytes, bytes]]] = [[], []]
        rng = random.Random(len(steps))
        for step in steps:
            if step == 2:
                key = rng.choice(gets)
                assert store.get(key) == wanted[key]
                continue
            item = next(iters[step], None)
            if item is not None:
                got[step].append(item)
        for i in (0, 1):
            got[i].extend(iters[i])
        assert got == expected
        if budget < 20_000 and sum(map(len, expected)) > 200:
            assert store.reopened > 0
    finally:
        store.close()


def test_a_scan_survives_a_reopen_caused_by_reads(store_dir: str) -> None:
    expected = _pairs(store_dir, b"b")
    store = ReopeningStore(lambda: open_leveldb(store_dir), budget_bytes=4_000)
    try:
        scan = store.iterate(b"b")
        first = next(scan)
        while store.reopened == 0:
            store.get(first[0])
        rest = list(scan)
        assert [first, *rest] == expected
    finally:
        store.close()


def _pairs(path: str, prefix: bytes) -> list[tuple[bytes, bytes]]:
    plain = open_leveldb(path)
    try:
        return list(plain.iterate(prefix))
    finally:
        plain.close()


def test_a_closed_store_refuses_reads(store_dir: str) -> None:
    store = ReopeningStore(lambda: open_leveldb(store_dir))
    scan = store.iterate(b"")
    next(scan)
    store.close()
    with pytest.raises(ValueError, match="closed during a scan"):
        next(scan)  # not an early, silent end
    store.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        store.get(b"a")
    with pytest.raises(ValueError):
        ReopeningStore(lambda: open_leveldb(store_dir), budget_bytes=0)


def _mapped_tables(path: str) -> int:
    """Table files of the store at ``path`` this process has mapped now."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
        lines = [line.rstrip() for line in f]
    return len({line.split()[-1] for line in lines if line.endswith(".ldb") and path in line})


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")
def test_a_whole_scan_keeps_few_tables_mapped(tmp_path: Path) -> None:
    """A store of some 24 tables of 1 MiB: a plain scan ends with all of them mapped
    (LevelDB keeps at least 64 open); reopened every 2 MiB, no more than a few at once."""
    path = str(tmp_path / "db")
    write_tables(path, 1, batches=24, rows=1_000, key_size=16, value_size=1_000)
    tables = sum(name.endswith(".ldb") for name in os.listdir(path))
    assert tables >= 16

    def most_mapped(store: KVStore) -> int:
        most = 0
        for i, _ in enumerate(store.iterate(b"")):
            if i % 200 == 0:
                most = max(most, _mapped_tables(path))
        return max(most, _mapped_tables(path))

    plain = open_leveldb(path, max_open_files=64)
    try:
        assert most_mapped(plain) >= tables - 2
    finally:
        plain.close()
    reopening = ReopeningStore(
        lambda: open_leveldb(path, max_open_files=64), budget_bytes=2 * 1024 * 1024
    )
    try:
        assert most_mapped(reopening) <= 5
        assert reopening.reopened >= 10
    finally:
        reopening.close()
