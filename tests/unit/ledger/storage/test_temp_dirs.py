"""Temporary directories a killed process leaves behind are removed by the next command,
and only those: not a live process's, not another program's, not through a link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.storage import WriteBatch, open_leveldb
from ledger.storage.snapshot import private_copy
from ledger.storage.temp_dirs import OWNER, make_owned_dir, owned_temp_dir, remove_leftovers

# A process that makes an owned directory in TMPDIR, writes 1 MiB into it, says where,
# and then waits to be killed.
HOLDER = """
import os, sys, time
from ledger.storage.temp_dirs import make_owned_dir
path, _fd = make_owned_dir("cityledger-test-")
with open(os.path.join(path, "scratch"), "wb") as f:
    f.write(os.urandom(1 << 20))
print(path, flush=True)
time.sleep(60)
"""


def _holder(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_process_directory_is_removed_and_its_bytes_counted(tmp_path: Path) -> None:
    proc, left = _holder(tmp_path)
    try:
        assert left.is_dir() and left.parent == tmp_path
        assert remove_leftovers(str(tmp_path)) == [], "its process still runs"
        assert left.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    removed = remove_leftovers(str(tmp_path))
    assert [r.path for r in removed] == [str(left)]
    assert removed[0].freed_bytes >= 1 << 20
    assert not left.exists()
    assert remove_leftovers(str(tmp_path)) == []


def test_a_file_linked_elsewhere_is_not_counted_as_freed(tmp_path: Path) -> None:
    proc, left = _holder(tmp_path)
    outside = tmp_path / "kept-elsewhere"
    os.link(left / "scratch", outside)  # as a private copy's link to a node's table
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    removed = remove_leftovers(str(tmp_path))
    assert len(removed) == 1 and removed[0].freed_bytes < 1 << 20
    assert outside.stat().st_size == 1 << 20, "the other link keeps its bytes"


def test_a_live_directory_of_this_process_is_kept(tmp_path: Path) -> None:
    with owned_temp_dir("cityledger-test-", temp_root=str(tmp_path)) as path:
        (Path(path) / "rows").write_bytes(b"x" * 100)
        assert remove_leftovers(str(tmp_path)) == []
        assert (Path(path) / "rows").exists()
    assert not Path(path).exists(), "removed on exit"


def test_directories_not_marked_as_ours_are_left_alone(tmp_path: Path) -> None:
    unmarked = tmp_path / "cityledger-audit-old"  # an older version's, or one being made
    unmarked.mkdir()
    (unmarked / "rows").write_bytes(b"x")
    other = tmp_path / "someone-else"
    other.mkdir()
    (other / OWNER).write_text("1\n")  # marked, but not one of our names
    proc, target = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    (link_dir / "cityledger-link").symlink_to(target)  # a link to an abandoned one
    assert remove_leftovers(str(link_dir)) == [], "a link is not followed"
    assert target.exists()
    assert [r.path for r in remove_leftovers(str(tmp_path))] == [str(target)]
    assert unmarked.exists() and other.exists()


def test_the_owner_file_is_never_seen_unlocked(tmp_path: Path) -> None:
    """Made locked under another name and renamed: a sweep running while a directory is
    being made finds no owner file, or a locked one."""
    path, fd = make_owned_dir("cityledger-test-", temp_root=str(tmp_path))
    try:
        assert sorted(os.listdir(path)) == [OWNER]
        assert remove_leftovers(str(tmp_path)) == []
    finally:
        os.close(fd)
    assert [r.path for r in remove_leftovers(str(tmp_path))] == [path], "unlocked: abandoned"


def test_only_our_prefix_is_made() -> None:
    with pytest.raises(ValueError, match="cityledger-"):
        make_owned_dir("audit-")


def test_a_copy_of_a_copy_has_its_own_owner(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = open_leveldb(str(data), create=True)
    batch = WriteBatch()
    batch.put(b"k", b"v")
    store.write(batch)
    store.close()
    with (
        private_copy(str(data), temp_root=str(tmp_path)) as first,
        private_copy(first, temp_root=str(tmp_path)) as second,
    ):
        for copy in (first, second):
            assert (Path(copy) / OWNER).is_file()
        assert remove_leftovers(str(tmp_path)) == [], "both held by this process"
    assert not Path(first).exists() and not Path(second).exists()
