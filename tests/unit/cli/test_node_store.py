"""Only ``node init`` creates a store; ``node start`` and ``audit`` refuse a missing or
damaged one with a one-line reason and no traceback (F5, F11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import plyvel

from ledger.storage import WriteBatch, open_leveldb
from ledger.storage import keys as store_keys
from node.config import Home
from tests.unit.cli.kit import message, run

REPO = Path(__file__).resolve().parents[3]


def _init(tmp_path: Path, genesis_file: str, key_file: str) -> Home:
    home = Home(str(tmp_path / "home"))
    result = run(
        ["node", "init", "--home", home.path, "--genesis", genesis_file, "--key", key_file]
    )
    assert result.exit_code == 0, message(result)
    return home


def _start(home: Home, *extra: str) -> subprocess.CompletedProcess[str]:
    """``cityledger node start`` as a process: what an operator sees on stderr (not a
    terminal, so rich would wrap at 80 columns if the error were not printed unwrapped)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "start", "--home", home.path, *extra],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_node_init_creates_the_store(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    home = _init(tmp_path, genesis_file, keys["clerk"])
    assert os.path.isfile(os.path.join(home.data, "CURRENT"))


def test_node_start_refuses_a_missing_store_in_one_line(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    home = _init(tmp_path, genesis_file, keys["clerk"])
    os.unlink(os.path.join(home.data, "CURRENT"))
    line = _one_line_refusal(_start(home))
    assert f"no ledger store at {home.data}" in line and "cityledger node init" in line
    assert not os.path.exists(os.path.join(home.data, "CURRENT"))


def test_node_start_refuses_a_truncated_table_in_one_line(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    home = _init(tmp_path, genesis_file, keys["clerk"])
    store = open_leveldb(home.data)
    batch = WriteBatch()
    batch.put(store_keys.GENESIS_HASH, b"\x01" * 32)
    for i in range(200):
        batch.put(store_keys.META + b"filler%04d" % i, os.urandom(1000))
    store.write(batch)
    store.close()
    db = plyvel.DB(home.data)
    db.compact_range()
    db.close()
    (table,) = Path(home.data).glob("*.ldb")
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    line = _one_line_refusal(_start(home))
    assert f"the database at {home.data} is damaged" in line and table.name in line


def test_audit_refuses_a_missing_store_and_creates_none(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    home = _init(tmp_path, genesis_file, keys["clerk"])
    os.unlink(os.path.join(home.data, "CURRENT"))
    result = run(["audit", "verify", "--home", home.path])
    assert result.exit_code != 0
    assert "no ledger store at" in message(result)
    assert not os.path.exists(os.path.join(home.data, "CURRENT"))


def test_init_store_creates_an_empty_store_only_where_there_is_none(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    home = _init(tmp_path, genesis_file, keys["clerk"])
    refused = run(["node", "init-store", "--home", home.path])
    assert refused.exit_code == 1 and "is not empty" in message(refused)
    for name in os.listdir(home.data):
        os.unlink(os.path.join(home.data, name))
    os.rmdir(home.data)
    created = run(["node", "init-store", "--home", home.path])
    assert created.exit_code == 0, message(created)
    open_leveldb(home.data).close()


def test_node_start_takes_the_passphrase_from_a_private_file_only(
    tmp_path: Path, genesis_file: str
) -> None:
    from ledger.crypto import PrivateKey
    from ledger.keyfile import write_key_file

    sealed = str(tmp_path / "sealed.json")
    write_key_file(sealed, PrivateKey(b"\x05" * 32), "right one")
    secret = tmp_path / "passphrase"
    secret.write_text("right one\n")
    os.chmod(secret, 0o600)
    home = Home(str(tmp_path / "home"))
    env = {"CITYLEDGER_KEY_PASSPHRASE_FILE": str(secret)}
    init = ["node", "init", "--home", home.path, "--genesis", genesis_file, "--key", sealed]
    result = run(init, env=env)
    assert result.exit_code == 0, message(result)
    os.chmod(secret, 0o644)
    line = _one_line_refusal(_start(home, "--passphrase-file", str(secret)))
    assert f"may be read by other users (mode 0644): chmod 600 {secret}" in line
    os.chmod(secret, 0o600)
    secret.write_text("wrong one\n")
    line = _one_line_refusal(_start(home, "--passphrase-file", str(secret)))
    assert "passphrase" in line.lower()


def test_node_start_on_a_port_in_use_says_so_in_one_line(
    tmp_path: Path, genesis_file: str, keys: dict[str, str]
) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        home = Home(str(tmp_path / "home"))
        result = run(["node", "init", "--home", home.path, "--genesis", genesis_file,
                      "--key", keys["clerk"], "--api", taken, "--p2p", "127.0.0.1:0"])  # fmt: skip
        assert result.exit_code == 0, message(result)
        line = _one_line_refusal(_start(home))
    assert f"cannot listen on {taken}: the address is already in use" in line
