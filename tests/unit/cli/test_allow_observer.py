"""``cityledger node allow-observer``: a joining city's key goes into ``[p2p] observers``
and a running node is told (SIGHUP); a bad key changes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ledger.crypto import PrivateKey
from tests.unit.cli.kit import message, run
from tests.unit.cli.test_tls_cmd import _home

# stands in for a running node: its command line holds "node start"; SIGHUP leaves a mark
# (written whole under another name, then renamed: a reader never sees it half written)
FAKE_NODE = """
import os, pathlib, signal, sys, time
def hup(*_):
    pathlib.Path(sys.argv[1] + ".tmp").write_text("hup")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
signal.signal(signal.SIGHUP, hup)
pathlib.Path(sys.argv[1] + ".ready").write_text("ready")
time.sleep(30)
"""


def wait_for_file(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_key_is_listed_once_and_the_config_still_loads(tmp_path: Path) -> None:
    home = _home(tmp_path)
    key = PrivateKey.generate().public_key.hex()
    first = run(["node", "allow-observer", "--home", home.path, key])
    assert first.exit_code == 0, message(first)
    assert f"added to [p2p] observers of {home.config}: {key}" in first.output
    assert "the node is not running" in first.output
    again = run(["node", "allow-observer", "--home", home.path, key])
    assert again.exit_code == 0 and "already in" in again.output
    assert home.load_config().p2p.observers == [key]


def test_a_bad_key_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    before = Path(home.config).read_bytes()
    for bad in ("zz" * 32, "ab" * 31, "ab" * 33):
        result = run(["node", "allow-observer", "--home", home.path, bad])
        assert result.exit_code == 1 and "is not a public key" in message(result)
    assert Path(home.config).read_bytes() == before


def test_a_running_node_is_sent_sighup(tmp_path: Path) -> None:
    home = _home(tmp_path)
    mark = tmp_path / "hup"
    fake = subprocess.Popen([sys.executable, "-c", FAKE_NODE, str(mark), "node", "start"])
    try:
        Path(home.pid).write_text(f"{fake.pid}\n")
        wait_for_file(tmp_path / "hup.ready", 10)  # its handler is installed
        key = PrivateKey.generate().public_key.hex()
        result = run(["node", "allow-observer", "--home", home.path, key])
        assert result.exit_code == 0 and f"pid {fake.pid}" in result.output, message(result)
        wait_for_file(mark, 10)
        assert mark.read_text() == "hup"
    finally:
        fake.kill()
        fake.wait()
