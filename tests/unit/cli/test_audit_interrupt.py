"""``audit verify`` stopped with SIGTERM (a supervisor's, ``timeout``'s) ends as with Ctrl-C:
exit 130, its processes (signature pool, the state tree's process) gone, and nothing of
its scratch stores or of the store's private copy left in the temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.cli.kit import CliNode
from tests.unit.cli.test_audit import leveldb_home

# The audit, each commit slowed down so that it is still running when the signal comes.
SLOW_AUDIT = """
import sys, time
from node.audit import ChainAuditor
commit = ChainAuditor._commit
def slow(self, block, cert):
    time.sleep(0.5)
    commit(self, block, cert)
ChainAuditor._commit = slow
from cli.main import main
sys.argv = ["cityledger", "audit", "verify", "--home", sys.argv[1], "--streaming",
            "--workers", "2", "--json"]
main()
"""


def _children(pid: int) -> set[int]:
    """``pid``'s descendants (every thread's children, recursively)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids = {int(k) for k in f.read().split()}
        except FileNotFoundError:
            continue
        for kid in kids:
            found |= {kid} | _children(kid)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _signal_slow_audit(home: Path, tmp: Path, sig: signal.Signals) -> tuple[int, str, list[int]]:
    """Start the slowed audit of ``home`` working in ``tmp``, send it ``sig`` once its
    processes run: its exit status, its standard error, and its processes still alive
    10 s later (every one of them stopped by its pid afterwards)."""
    audit = subprocess.Popen(
        [sys.executable, "-c", SLOW_AUDIT, str(home)],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    helpers: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while len(helpers) < 3 and time.monotonic() < deadline:  # two signers and the tree
            time.sleep(0.1)
            helpers = _children(audit.pid)
        assert len(helpers) >= 3, f"the audit's processes did not start: {helpers}"
        assert any(tmp.iterdir()), "the audit works in the temporary directory"
        audit.send_signal(sig)
        _, err = audit.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        return audit.returncode, err, [p for p in helpers if _alive(p)]
    finally:
        if audit.poll() is None:
            audit.kill()
            audit.wait()
        for pid in _children(audit.pid) | helpers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_audit_and_leaves_nothing_behind(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, err, outlived = _signal_slow_audit(home, tmp, signal.SIGTERM)
    assert code == 130, err
    assert "interrupted" in err
    assert not outlived, "a process of the audit outlived it"
    assert list(tmp.iterdir()) == [], "the audit left files behind"


def test_after_sigkill_no_process_is_left_and_the_next_audit_clears_its_files(
    node: CliNode, tmp_path: Path
) -> None:
    """SIGKILL runs no clean-up: the signature workers and the tree process end with the
    audit (else they wait for work for ever), and the next audit removes the private
    copies and scratch stores it left, saying so."""
    home = leveldb_home(node, tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code, _, outlived = _signal_slow_audit(home, tmp, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not outlived, "a process of the audit outlived it"
    left = sorted(p.name for p in tmp.iterdir())
    assert len(left) == 3, left  # the store's two private copies and the scratch
    again = subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", "verify", "--home", str(home), "--json"],
        env={**os.environ, "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "removed 3 temporary directories left by a command that was killed" in again.stderr
    assert list(tmp.iterdir()) == []
