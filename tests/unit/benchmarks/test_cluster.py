"""The bench's per-node counters count the node's worker processes too."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.cluster import _sample_one, sample_pid

BUSY_THEN_WAIT = (
    "import time\nt = time.process_time()\n"
    "while time.process_time() - t < 0.4: pass\ntime.sleep(30)"
)


def test_a_live_child_process_adds_its_cpu_and_memory_to_its_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY_THEN_WAIT])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sample = _sample_one(child.pid)
            if sample is not None and sample.cpu_s >= 0.4:
                break
            time.sleep(0.05)
        own, whole = _sample_one(os.getpid()), sample_pid(os.getpid())
        assert own is not None and whole is not None
        assert whole.cpu_s >= own.cpu_s + 0.35
        assert whole.peak_rss_mb > own.peak_rss_mb
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_gone_gives_no_sample() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert sample_pid(child.pid) is None
    assert sample_pid(None) is None
