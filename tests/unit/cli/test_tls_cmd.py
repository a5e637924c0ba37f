"""``cityledger node rotate-tls-key`` and ``node tls-fingerprint``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devnet import layout
from ledger.keyfile import read_key_file
from node.config import Home
from node.link_identity import fingerprint
from node.tls import read_identity
from tests.unit.cli.kit import run


def _home(tmp_path: Path) -> Home:
    network = layout.generate(str(tmp_path / "net"), 1, base_port=39900, genesis_time_ms=1)
    return Home(network.nodes[0].home)


def _current(home: Home) -> str:
    _, der = read_identity(home.tls_key, home.tls_cert, read_key_file(home.key))
    return f"sha256:{fingerprint(der).hex()}"


def test_rotation_replaces_the_certificate_and_the_fingerprint_names_it(tmp_path: Path) -> None:
    home = _home(tmp_path)
    before = _current(home)
    shown = run(["node", "tls-fingerprint", "--home", home.path])
    assert shown.exit_code == 0 and shown.output.strip() == before
    rotated = run(["node", "rotate-tls-key", "--home", home.path])
    assert rotated.exit_code == 0, rotated.output
    after = _current(home)
    assert after != before and after in rotated.output
    assert "the node is not running" in rotated.output
    assert os.stat(home.tls_key).st_mode & 0o077 == 0


def test_a_stale_pid_file_naming_another_program_is_not_signalled(tmp_path: Path) -> None:
    home = _home(tmp_path)
    other = subprocess.Popen(["sleep", "30"])  # a pid reused by a program that is no node
    try:
        Path(home.pid).write_text(f"{other.pid}\n")
        rotated = run(["node", "rotate-tls-key", "--home", home.path])
        assert rotated.exit_code == 0 and "the node is not running" in rotated.output
        assert other.poll() is None  # not sent SIGHUP (which would have ended it)
    finally:
        other.kill()
        other.wait()
