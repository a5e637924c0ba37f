"""Private temporary directories that a killed process does not leave behind for good.

An offline audit works in temporary directories: private copies of the audited store
(hard links to its table files) and scratch stores that grow with the chain (hundreds of
MB for 50,000 transactions). Ctrl-C and SIGTERM remove them; SIGKILL, a crash or a
power cut runs no clean-up, and they would stay — the scratch taking its space for good,
and a copy's links keeping alive table files the node has since compacted away (up to
the whole store's size again).

:func:`owned_temp_dir` marks each directory as its process's: a file :data:`OWNER`,
locked (``flock``) while the process lives, which the kernel unlocks when the process
ends however it ends. :func:`remove_leftovers` removes every such directory whose lock
is free. The lock, not a process id, tells: a process id is reused, a lock is not held
by a dead process. The owner file appears already locked (locked under another name,
then renamed), so a sweep never finds a live directory unlocked; directories without
one (another program's, or an older version's) are left alone, as are other users'.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PREFIX = "cityledger-"  # every temporary directory of ours starts so
OWNER = ".owner"  # the lock file; LevelDB leaves names it does not know alone


@dataclass(frozen=True)
class Leftover:
    """A directory removed by :func:`remove_leftovers`, and the bytes that freed: its
    files linked nowhere else (a private copy's links to a node's live tables free
    nothing; to tables the node has dropped since, they do)."""

    path: str
    freed_bytes: int


@contextmanager
def owned_temp_dir(prefix: str, *, temp_root: str | None = None) -> Iterator[str]:
    """A new private (0700) temporary directory, removed on exit, that
    :func:`remove_leftovers` removes too once this process is gone."""
    path, fd = make_owned_dir(prefix, temp_root=temp_root)
    try:
        yield path
    finally:
        remove_owned_dir(path, fd)


def make_owned_dir(prefix: str, *, temp_root: str | None = None) -> tuple[str, int]:
    """:func:`owned_temp_dir` without the context: the directory and its owner lock's
    descriptor, for :func:`remove_owned_dir`."""
    if not prefix.startswith(PREFIX):
        raise ValueError(f"a temporary directory of ours starts with {PREFIX!r}")
    path = tempfile.mkdtemp(prefix=prefix, dir=temp_root)
    try:
        return path, _claim(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def remove_owned_dir(path: str, fd: int) -> None:
    """Remove a directory of :func:`make_owned_dir`, then let go of its lock."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


def _claim(path: str) -> int:
    """Lock the owner file of ``path`` (kept open: the descriptor holds the lock)."""
    pending = os.path.join(path, OWNER + ".new")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())  # for a person looking; not trusted
        os.rename(pending, os.path.join(path, OWNER))
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_leftovers(temp_root: str | None = None) -> list[Leftover]:
    """Remove the directories of ours in ``temp_root`` (default: the system's temporary
    directory) whose process has ended; what was removed, with the bytes it held."""
    root = tempfile.gettempdir() if temp_root is None else temp_root
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith(PREFIX) and _ours(entry):
            left = _remove_if_abandoned(entry.path)
            if left is not None:
                removed.append(left)
    return removed


def _ours(entry: os.DirEntry[str]) -> bool:
    """A real directory (not a link to one) that this user owns."""
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _remove_if_abandoned(path: str) -> Leftover | None:
    try:
        fd = os.open(os.path.join(path, OWNER), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # not marked (or removed meanwhile): not ours to judge
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # its process still runs (or another sweep is removing it)
        freed = _unshared_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        return None if os.path.lexists(path) else Leftover(path, freed)
    finally:
        os.close(fd)


def _unshared_bytes(path: str) -> int:
    """Disk bytes of the files under ``path`` that have no other link (symlinks not
    followed): what removing it frees."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if info.st_nlink == 1:
                total += info.st_blocks * 512
    return total
