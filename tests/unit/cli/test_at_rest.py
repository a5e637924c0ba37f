"""Keys and data at rest: every key file is created mode 0600 from
its first byte (``open(2)`` with ``O_CREAT | O_EXCL`` and mode 0600, never a copy and a
``chmod`` after), homes and data directories are 0700, and a node started on a home
others can read warns once and starts.

The tests run under a umask of 0, where anything created with a default mode would be
world-readable: a file that is private here is private because of how it was created.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devnet import layout, loader
from ledger.crypto import PrivateKey
from ledger.errors import KeyFileError
from ledger.keyfile import copy_key_file, read_key_file, write_key_file
from node.config import Home
from tests.unit.cli.kit import message, run

PRIVATE = 0o077  # group and others: no bit may be set


@dataclass
class Creation:
    flags: int
    mode: int
    mode_at_creation: int  # fstat of the new descriptor, before any byte is written


@dataclass
class Recorder:
    """Every ``os.open`` that may create a file, by absolute path."""

    created: dict[str, list[Creation]] = field(default_factory=dict)

    def check_private_from_the_first_byte(self, path: str | Path) -> None:
        path = os.path.abspath(path)
        assert path in self.created, (
            f"{path} was not created by os.open(O_CREAT | O_EXCL, 0o600): a copy or a plain "
            "open() makes it with the default mode, readable by others until a chmod"
        )
        first = self.created[path][0]
        assert first.flags & os.O_CREAT and first.flags & os.O_EXCL, oct(first.flags)
        assert first.mode == 0o600, oct(first.mode)
        assert first.mode_at_creation & PRIVATE == 0, oct(first.mode_at_creation)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    real_open = os.open

    def recording_open(path: object, flags: int, mode: int = 0o777, **kw: object) -> int:
        fd = real_open(path, flags, mode, **kw)  # type: ignore[arg-type]
        if flags & os.O_CREAT and isinstance(path, str | Path):
            at = stat.S_IMODE(os.fstat(fd).st_mode)
            rec.created.setdefault(os.path.abspath(path), []).append(Creation(flags, mode, at))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    old = os.umask(0)
    try:
        yield rec
    finally:
        os.umask(old)


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_key_file_is_private_from_the_first_byte(tmp_path: Path, recorder: Recorder) -> None:
    for passphrase in (None, "pw"):
        path = tmp_path / f"k-{passphrase}.json"
        key = PrivateKey.from_label("at-rest")
        write_key_file(str(path), key, passphrase)
        recorder.check_private_from_the_first_byte(path)
        assert read_key_file(str(path), passphrase).public_key == key.public_key


def test_copy_key_file_is_private_and_refuses_to_overwrite(
    tmp_path: Path, recorder: Recorder
) -> None:
    source = tmp_path / "src.json"
    write_key_file(str(source), PrivateKey.from_label("copy"), "sealed")
    os.chmod(source, 0o644)  # an operator's loose copy: ours is 0600 anyway
    dest = tmp_path / "dest.json"
    copy_key_file(str(source), str(dest))
    recorder.check_private_from_the_first_byte(dest)
    assert dest.read_bytes() == source.read_bytes()  # sealed stays sealed
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        copy_key_file(str(source), str(dest))
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(KeyFileError):
        copy_key_file(str(tmp_path / "junk"), str(tmp_path / "junk-copy"))
    assert not (tmp_path / "junk-copy").exists()


def test_keys_new_and_import_are_private_from_the_first_byte(
    tmp_path: Path, recorder: Recorder
) -> None:
    new = tmp_path / "new.key"
    assert run(["keys", "new", "--out", str(new), "--no-passphrase"]).exit_code == 0
    recorder.check_private_from_the_first_byte(new)
    imported = tmp_path / "imported.key"
    result = run(
        ["keys", "import", "--out", str(imported), "--no-passphrase"], input="22" * 32 + "\n"
    )
    assert result.exit_code == 0, message(result)
    recorder.check_private_from_the_first_byte(imported)


def _init(home: Path, genesis_file: str, key_file: str) -> tuple[int, str]:
    args = ["node", "init", "--home", str(home), "--genesis", genesis_file, "--key", key_file]
    result = run(args)
    return result.exit_code, message(result)


def test_node_init_makes_a_private_home(
    tmp_path: Path, genesis_file: str, keys: dict[str, str], recorder: Recorder
) -> None:
    home = Home(str(tmp_path / "srv" / "node"))
    code, text = _init(Path(home.path), genesis_file, keys["clerk"])
    assert code == 0, text
    recorder.check_private_from_the_first_byte(home.key)
    assert Path(home.key).read_bytes() == Path(keys["clerk"]).read_bytes()
    assert _mode(home.path) == 0o700
    assert _mode(home.data) == 0o700
    assert home.open_to_others() == []
    shutil.rmtree(home.data)  # the rebuild path makes a private store too
    result = run(["node", "init-store", "--home", home.path])
    assert result.exit_code == 0, message(result)
    assert _mode(home.data) == 0o700


def test_node_init_tightens_an_existing_home(
    tmp_path: Path, genesis_file: str, keys: dict[str, str], recorder: Recorder
) -> None:
    home = tmp_path / "made-by-hand"
    home.mkdir(mode=0o755)
    code, text = _init(home, genesis_file, keys["clerk"])
    assert code == 0, text
    assert _mode(home) == 0o700 and "was mode 755" in text


def test_node_init_keeps_the_same_key_and_refuses_another(
    tmp_path: Path, genesis_file: str, keys: dict[str, str], recorder: Recorder
) -> None:
    same = tmp_path / "same"
    same.mkdir()
    (same / "node_key.json").write_bytes(Path(keys["clerk"]).read_bytes())
    os.chmod(same / "node_key.json", 0o644)
    code, text = _init(same, genesis_file, keys["clerk"])
    assert code == 0, text
    assert _mode(same / "node_key.json") == 0o600

    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    (other / "node_key.json").write_bytes(Path(keys["auditor"]).read_bytes())
    code, text = _init(other, genesis_file, keys["clerk"])
    assert code != 0 and "holds another key" in text
    assert sorted(os.listdir(other)) == ["node_key.json"]  # nothing else touched
    assert Path(other / "node_key.json").read_bytes() == Path(keys["auditor"]).read_bytes()


def test_devnet_homes_keys_and_stores_are_private(tmp_path: Path, recorder: Recorder) -> None:
    network = layout.generate(str(tmp_path / "devnet"), 2, genesis_time_ms=1_700_000_000_000)
    assert _mode(network.home) == 0o700
    for entry in network.nodes:
        home = Home(entry.home)
        assert _mode(home.path) == 0o700 and _mode(home.data) == 0o700
        recorder.check_private_from_the_first_byte(home.key)
    loader.write_demo_keys(network)
    assert _mode(os.path.join(network.home, "keys")) == 0o700
    for role in loader.DEMO_KEYS:
        recorder.check_private_from_the_first_byte(loader.demo_key_path(network, role))


def test_devnet_in_a_directory_the_operator_made_keeps_its_mode(
    tmp_path: Path, recorder: Recorder
) -> None:
    root = tmp_path / "mine"
    root.mkdir(mode=0o755)
    network = layout.generate(str(root), 1, genesis_time_ms=1_700_000_000_000)
    assert _mode(root) == 0o755
    assert _mode(network.nodes[0].home) == 0o700


def test_node_start_warns_once_on_a_home_others_can_read(
    tmp_path: Path,
    genesis_file: str,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import node.process

    home = Home(str(tmp_path / "home"))
    code, text = _init(Path(home.path), genesis_file, keys["clerk"])
    assert code == 0, text
    started: list[str] = []

    async def serve(path: str, **kwargs: object) -> None:
        started.append(path)

    monkeypatch.setattr(node.process, "serve", serve)

    def start() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            result = run(["node", "start", "--home", home.path])
        assert result.exit_code == 0, message(result)
        return [r.getMessage() for r in caplog.records if "open to group/others" in r.message]

    assert start() == [] and started == [home.path]
    os.chmod(home.path, 0o755)
    os.chmod(home.data, 0o750)
    warnings = start()
    assert len(warnings) == 1 and len(started) == 2  # warned once, started anyway
    assert f"{home.path} (mode 755)" in warnings[0] and f"{home.data} (mode 750)" in warnings[0]
    assert home.key not in warnings[0]
