"""A forked pool's workers end on ``Pool.terminate`` whatever SIGTERM handler their
parent holds (node.sigcheck.default_sigterm). Without it, a parent with a Python
SIGTERM handler (the CLI's bench; the test run after a bench command) made a worker
miss its SIGTERM now and then and the pool wait for it forever: the script below hung
in three runs out of three without ``default_sigterm``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

_POOLS = textwrap.dedent(
    """
    import multiprocessing, signal
    from node.sigcheck import default_sigterm

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # as `cityledger bench` does
    for _ in range(200):
        with default_sigterm():
            pool = multiprocessing.get_context("fork").Pool(2)
        pool.terminate()  # at once, as an audit of a short chain does
    assert signal.getsignal(signal.SIGTERM) is interrupt, "the handler is given back"
    print("terminated")
    """
)


def test_pools_terminate_under_an_inherited_sigterm_handler() -> None:
    # a session of its own, so that a hung run's workers are killed with it
    run = subprocess.Popen(
        [sys.executable, "-c", _POOLS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        raise AssertionError("a pool's terminate hung on a worker that missed SIGTERM") from None
    assert run.returncode == 0 and "terminated" in out, err[-2000:]
