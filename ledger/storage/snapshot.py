"""Reading a stopped node's store without changing one byte of it.

LevelDB has no read-only mode: opening a store replays its write-ahead log into a new
table and deletes the log, so merely opening a node's ``data/`` rewrites it. An auditor
must leave the evidence as found, so :func:`private_copy` opens a copy instead:

- it first takes the store's ``LOCK`` (the same ``fcntl`` lock LevelDB takes, which
  changes nothing on disk), so a running node is refused and no node starts while the
  copy is made;
- the table files (``*.ldb``, ``*.sst``) that the current MANIFEST lists are immutable,
  so they are hard-linked (copied when the copy lives on another file system); everything
  else (``CURRENT``, ``MANIFEST-*``, the ``*.log`` write-ahead logs, and tables the
  MANIFEST does not list, which LevelDB may write again under the same name) is copied;
- the copy lives in a private temporary directory (0700) that is removed afterwards,
  whatever happens — and, if the process is killed before it can, by the next command
  that sweeps leftovers (:mod:`ledger.storage.temp_dirs`).

Whatever LevelDB then does to the copy (log recovery, compaction, deleting obsolete
tables) unlinks or rewrites only the copy's names: the original files keep their bytes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import StorageError, StoreLockedError, StoreMissingError
from ledger.storage.tables import table_ranges
from ledger.storage.temp_dirs import OWNER, make_owned_dir, remove_owned_dir

IMMUTABLE_SUFFIXES = (".ldb", ".sst")
# the lock, LevelDB's text logs, and a private copy's own mark (when copying a copy)
NOT_COPIED = frozenset({"LOCK", "LOG", "LOG.old", OWNER})


@contextmanager
def private_copy(data_dir: str, *, temp_root: str | None = None) -> Iterator[str]:
    """A private copy of the LevelDB store at ``data_dir``, removed on exit.

    Refuses (with :class:`StoreLockedError`) a store a running process holds, and (with
    :class:`StoreMissingError`) a directory that holds no store.
    """
    if not os.path.isfile(os.path.join(data_dir, "CURRENT")):
        raise StoreMissingError(f"no ledger store at {data_dir}")
    with _held_lock(data_dir):
        copy, owner = make_owned_dir("cityledger-audit-", temp_root=temp_root)
        try:
            _copy_store(data_dir, copy)
        except BaseException:
            remove_owned_dir(copy, owner)
            raise
    try:
        yield copy
    finally:
        remove_owned_dir(copy, owner)


@contextmanager
def _held_lock(data_dir: str) -> Iterator[None]:
    """LevelDB's own lock on ``data_dir/LOCK``, held without writing to the file."""
    path = os.path.join(data_dir, "LOCK")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield  # a store copied without its LOCK file: nothing can be holding it
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise StoreLockedError(
                    f"the database at {data_dir} is in use by another process (a running "
                    "node?): stop it first, or audit it online with --node URL"
                ) from None
            raise StorageError(f"cannot lock {path}: {exc.strerror}") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _copy_store(source: str, target: str) -> None:
    live = set(table_ranges(source))  # the table files the current MANIFEST lists
    for entry in os.scandir(source):
        if not entry.is_file(follow_symlinks=False) or entry.name in NOT_COPIED:
            continue
        destination = os.path.join(target, entry.name)
        if entry.name.endswith(IMMUTABLE_SUFFIXES) and _number(entry.name) in live:
            # Only a live table is immutable. A table the MANIFEST does not list (left by
            # a compaction that a stop cut short) may carry a file number LevelDB hands
            # out again: the copy would then rewrite it, through a link, in the original.
            try:
                os.link(entry.path, destination)
                continue
            except OSError:
                pass  # another file system, or links not allowed: copy instead
        shutil.copyfile(entry.path, destination)


def _number(name: str) -> int:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else -1
