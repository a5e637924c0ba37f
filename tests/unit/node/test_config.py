"""A node's config.toml (node/config.py): its sections, the checks on what it holds, and
the ``section.key=value`` overrides the benchmarks use."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devnet import layout
from ledger.storage import DEFAULT_BLOCK_CACHE_MB, DEFAULT_WRITE_BUFFER_MB, MIB
from node.config import ConfigError, Home, NodeConfig
from node.runtime import open_node
from tests.unit.ledger.storage.plyvel_spy import record_plyvel_options


def test_every_section_survives_the_file_form() -> None:
    config = NodeConfig(name="busan-0")
    config.storage.block_cache_mb = 128
    config.storage.write_buffer_mb = 8
    config.mempool.max_txs = 1234
    config.p2p.peers = ["127.0.0.1:1", "127.0.0.1:2"]
    back = NodeConfig.from_toml(config.to_toml())
    assert back == config
    assert "[storage]" in config.to_toml()


def test_a_file_without_a_storage_section_gets_the_defaults() -> None:
    config = NodeConfig.from_toml('name = "n"\n[mempool]\nmax_txs = 10\n')
    assert config.storage.block_cache_mb == DEFAULT_BLOCK_CACHE_MB
    assert config.storage.write_buffer_mb == DEFAULT_WRITE_BUFFER_MB
    assert config.mempool.max_txs == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\nblock_cache_mb = 4\n", "block_cache_mb must be between 8 and 65536, not 4"),
        ("[mempool]\nsignature_processes = -1\n", "signature_processes must be between 0 and 64"),
        ("[storage]\nwrite_buffer_mb = 0\n", "write_buffer_mb must be between 1 and 4096, not 0"),
        ("[storage]\nblock_cache_mb = 64.5\n", "block_cache_mb must be int"),
        ("[storage]\nblock_cache = 64\n", "unknown setting 'block_cache'"),
        ("[storage]\nblock_cache_mb = true\n", "block_cache_mb must be int"),
        ("[disk]\nsize = 1\n", "unknown setting 'disk'"),
        ("[storage\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        NodeConfig.from_toml(text, "home/config.toml")


def test_settings_apply_one_value_each() -> None:
    config = NodeConfig()
    config.apply_setting("storage.block_cache_mb=256")
    config.apply_setting(" storage.write_buffer_mb = 64 ")
    config.apply_setting("api.rate_limit_per_s=10")  # an int where a float is kept
    config.apply_setting("api.listen=127.0.0.1:9000")  # a bare word is a string
    config.apply_setting("sync.batch_blocks=7")
    config.apply_setting('p2p.peers=["127.0.0.1:1"]')
    assert (config.storage.block_cache_mb, config.storage.write_buffer_mb) == (256, 64)
    assert config.api.rate_limit_per_s == 10
    assert config.api.listen == "127.0.0.1:9000"
    assert config.sync.batch_blocks == 7
    assert config.p2p.peers == ["127.0.0.1:1"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("storage=1", "expected SECTION.KEY=VALUE"),
        ("storage.block_cache_mb", "expected SECTION.KEY=VALUE"),
        ("disk.size=1", "expected SECTION.KEY=VALUE with SECTION one of p2p, api"),
        ("storage.block_cache_mb=lots", "block_cache_mb must be int"),
        ("storage.block_cache_mb=1", "block_cache_mb must be between 8 and 65536"),
        ("storage.nope=1", "unknown setting 'nope'"),
        ("mempool.signature_processes=65", "signature_processes must be between 0 and 64"),
        ("p2p.send_queue_bytes=1000", "send_queue_bytes must be between 1048576 and"),
        ("p2p.ban_threshold=0", "ban_threshold must be between -1000000000 and -1"),
        ("p2p.ban_min_ms=0", "ban_min_ms must be between 100 and 86400000"),
    ],
)
def test_a_bad_setting_is_refused_and_changes_nothing(setting: str, message: str) -> None:
    config = NodeConfig()
    before = NodeConfig.from_toml(config.to_toml())
    with pytest.raises(ConfigError, match=message):
        config.apply_setting(setting)
    assert config == before


def test_a_node_opens_its_store_with_its_storage_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = layout.generate(str(tmp_path / "net"), 1, genesis_time_ms=int(time.time() * 1000))
    home = Home(network.nodes[0].home)
    config = home.load_config()
    config.storage.block_cache_mb = 24
    config.storage.write_buffer_mb = 3
    Path(home.config).write_text(config.to_toml(), encoding="utf-8")
    seen = record_plyvel_options(monkeypatch)
    node = open_node(home.path)
    node.store.close()
    assert seen[0]["lru_cache_size"] == 24 * MIB
    assert seen[0]["write_buffer_size"] == 3 * MIB
