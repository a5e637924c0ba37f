"""The threads Python does not run — LevelDB's compactions — at a lower CPU priority.

LevelDB compacts its tables in a thread of its own, started the first time it has
something to compact (the process's one background thread of its default environment).
A compaction is work the node can put off: nothing waits for it until level 0 holds
eight tables, when LevelDB slows each write by a millisecond (it stops them at twelve).
Consensus, execution and the API cannot be put off: every millisecond they wait is a
millisecond of every client's latency. Where a node shares its cores (validators on one
machine, or a busy host) a compaction that starts as a burst arrives takes a core from
them; the nodes of one network even compact together, since they write the same blocks.
So the node lowers the priority of the threads that are not Python's by ``[storage]
compaction_nice`` below its own, as RocksDB does for its low-priority pool
(``Env::LowerThreadPoolCPUPriority``). A compaction then runs in the time the node
leaves, and as fast as before on a host with a core to spare. Besides LevelDB's one
thread, the only others a node has are libuv's four workers under uvloop (started when
the node binds its sockets; they resolve host names, a few a minute at most), which
lose nothing by waiting either.

Linux keeps a nice value per thread, so ``setpriority(PRIO_PROCESS, tid, n)`` lowers that
thread only. Elsewhere (no ``/proc/self/task``) nothing is done. Raising a priority needs
privileges a node does not have; lowering one needs none: the value is the node's own
plus ``compaction_nice`` (at most 19), so a node an operator started niced is lowered
from there. A thread is lowered on its second sighting, a check after it was first seen:
a Python thread that has just started is in the task list a moment before
``threading`` knows it.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("cityledger.node")

TASKS = "/proc/self/task"


class StorageThreadPriority:
    """Lowers each thread that is not Python's by ``nice`` below the calling thread, once,
    on the second check that finds it.

    :meth:`check` is cheap (one directory listing of a few entries) and is called once a
    second: LevelDB starts its thread when it first compacts, which may be long after the
    store was opened.
    """

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.seen: set[int] = set()  # not Python's at the last check
        self.lowered: set[int] = set()
        self.failed = False

    def check(self) -> list[int]:
        """Lower the threads seen at the last check too; the thread ids lowered this time."""
        if self.nice <= 0 or self.failed:
            return []
        try:
            tids = {int(name) for name in os.listdir(TASKS)}
        except (OSError, ValueError):
            self.failed = True  # no /proc: not Linux, or a sandbox without it
            return []
        python = {t.native_id for t in threading.enumerate() if t.native_id is not None}
        foreign = tids - python - {os.getpid()}
        due = sorted((foreign & self.seen) - self.lowered)
        self.seen = foreign
        self.lowered &= tids  # forget threads that have ended
        if not due:
            return []
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + self.nice)
        done: list[int] = []
        for tid in due:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, target)
            except ProcessLookupError:
                continue  # gone since the listing
            except OSError as exc:
                log.warning("could not lower storage thread %d to nice %d: %s", tid, target, exc)
                self.failed = True
                return done
            self.lowered.add(tid)
            done.append(tid)
        if done:
            log.info(
                "threads outside Python %s (LevelDB's compactions, uvloop's name lookups) "
                "run at nice %d",
                done,
                target,
            )
        return done
