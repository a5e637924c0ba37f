"""A node's config.toml (node/config.py): its sections, the checks on what it holds, and
the ``section.key=value`` overrides the benchmarks use."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

import pytest

from devnet import layout
from ledger.storage import (
    DEFAULT_BLOCK_CACHE_MB,
    DEFAULT_TABLE_FILE_MB,
    DEFAULT_WRITE_BUFFER_MB,
    MIB,
)
from node.config import (
    DEFAULT_COMPACTION_NICE,
    DEFAULT_HEAP_TRIM_S,
    MAX_PEERS,
    SECTIONS,
    ConfigError,
    Home,
    NodeConfig,
    plaintext_problem,
)
from node.process import open_node
from tests.unit.ledger.storage.plyvel_spy import record_plyvel_options


def test_every_section_survives_the_file_form() -> None:
    config = NodeConfig(name="busan-0")
    config.storage.block_cache_mb = 128
    config.storage.write_buffer_mb = 8
    config.storage.compress = True
    config.storage.table_file_mb = 16
    config.storage.compaction_nice = 5
    config.storage.heap_trim_s = 60
    config.mempool.max_txs = 1234
    config.p2p.peers = ["127.0.0.1:1", "127.0.0.1:2"]
    back = NodeConfig.from_toml(config.to_toml())
    assert back == config
    assert "[storage]" in config.to_toml()


def test_a_file_without_a_storage_section_gets_the_defaults() -> None:
    config = NodeConfig.from_toml('name = "n"\n[mempool]\nmax_txs = 10\n')
    assert config.storage.block_cache_mb == DEFAULT_BLOCK_CACHE_MB
    assert config.storage.write_buffer_mb == DEFAULT_WRITE_BUFFER_MB
    assert config.storage.table_file_mb == DEFAULT_TABLE_FILE_MB
    assert config.storage.compaction_nice == DEFAULT_COMPACTION_NICE
    assert config.storage.heap_trim_s == DEFAULT_HEAP_TRIM_S
    assert config.mempool.max_txs == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\nblock_cache_mb = 4\n", "block_cache_mb must be between 8 and 65536, not 4"),
        ("[mempool]\nsignature_processes = -1\n", "signature_processes must be between 0 and 64"),
        ("[storage]\nwrite_buffer_mb = 0\n", "write_buffer_mb must be between 1 and 4096, not 0"),
        ("[storage]\ntable_file_mb = 1\n", "table_file_mb must be between 2 and 1024, not 1"),
        ("[storage]\ncompaction_nice = 20\n", "compaction_nice must be between 0 and 19, not 20"),
        ("[storage]\nheap_trim_s = -1\n", "heap_trim_s must be between 0 and 86400, not -1"),
        ("[storage]\nblock_cache_mb = 64.5\n", "block_cache_mb must be int"),
        ("[storage]\nblock_cache = 64\n", "unknown setting 'block_cache'"),
        ("[storage]\nblock_cache_mb = true\n", "block_cache_mb must be int"),
        ('[storage]\ncompress = "snappy"\n', "compress must be bool"),
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
        ("p2p.tls=1", "tls must be bool"),
        ("api.tls=yes", "tls must be bool"),
        ("p2p.handshake_timeout_ms=100", "handshake_timeout_ms must be between 200 and 60000"),
        ("p2p.max_pending_handshakes=0", "max_pending_handshakes must be between 1 and"),
        ("p2p.max_pending_per_address=0", "max_pending_per_address must be between 1 and"),
    ],
)
def test_a_bad_setting_is_refused_and_changes_nothing(setting: str, message: str) -> None:
    config = NodeConfig()
    before = NodeConfig.from_toml(config.to_toml())
    with pytest.raises(ConfigError, match=message):
        config.apply_setting(setting)
    assert config == before


def test_every_setting_has_a_range_or_a_check() -> None:
    """No setting is taken as it comes: a number has a range, anything else a check."""
    config = NodeConfig()
    for obj in (config, *(getattr(config, section) for section in SECTIONS)):
        for f in fields(obj):
            if f.name in SECTIONS:
                continue
            assert "range" in f.metadata or "check" in f.metadata, f"{type(obj).__name__}.{f.name}"


KEY = "ab" * 32
MANY = ", ".join(f'"127.0.0.1:{i}"' for i in range(1, MAX_PEERS + 2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = ""\n', "name must be 1 to 128 printable characters"),
        ('log_level = "loud"\n', "log_level must be one of debug, info, warning, error, critical"),
        ('[p2p]\nlisten = "localhost"\n', "listen must be host:port"),
        ('[p2p]\nlisten = "127.0.0.1:70000"\n', "listen must be host:port"),
        ('[api]\nlisten = "127.0.0.1:http"\n', "listen must be host:port"),
        ('[p2p]\npeers = ["127.0.0.1"]\n', "peers must list host:port addresses"),
        ("[p2p]\npeers = [1]\n", "peers must list host:port addresses \\(not a string\\)"),
        (f"[p2p]\npeers = [{MANY}]\n", f"peers must list at most {MAX_PEERS} addresses"),
        ('[p2p]\nobservers = ["abcd"]\n', "observers must list public keys as 64 hex digits"),
        (f'[p2p]\nobservers = ["{"zz" * 32}"]\n', "observers must list public keys as 64 hex"),
        ("[p2p]\nmax_frame_bytes = 1000\n", "max_frame_bytes must be between 1048576 and"),
        ("[p2p]\nsend_queue = 0\n", "send_queue must be between 16 and 1000000, not 0"),
        ("[p2p]\nreconnect_min_ms = 0\n", "reconnect_min_ms must be between 10 and 60000"),
        ("[p2p]\nreconnect_max_ms = 0\n", "reconnect_max_ms must be between 10 and 3600000"),
        ("[api]\nmax_body_bytes = 10\n", "max_body_bytes must be between 1024 and"),
        ("[api]\nrate_limit_per_s = 0.5\n", "rate_limit_per_s must be between 1 and 10000000"),
        ("[api]\nrate_limit_burst = 0\n", "rate_limit_burst must be between 1 and 10000000"),
        ("[api]\nrequest_max_age_ms = 1\n", "request_max_age_ms must be between 1000 and"),
        (
            '[api]\ntrusted_proxies = ["nginx"]\n',
            "trusted_proxies must list IP addresses or networks \\('nginx' is not",
        ),
        ("[api]\ntrusted_proxies = [1]\n", "trusted_proxies must list IP addresses or networks"),
        ("[mempool]\nmax_txs = 0\n", "max_txs must be between 1 and 10000000, not 0"),
        ("[mempool]\ngossip_interval_ms = 0\n", "gossip_interval_ms must be between 1 and"),
        ("[sync]\nbatch_blocks = 0\n", "batch_blocks must be between 1 and 10000, not 0"),
        ("[sync]\nbatch_blocks = 20000\n", "batch_blocks must be between 1 and 10000"),
    ],
)
def test_an_out_of_range_setting_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"home/config.toml.*{message}"):
        NodeConfig.from_toml(text, "home/config.toml")


def test_settings_in_range_are_taken() -> None:
    config = NodeConfig.from_toml(
        'name = "seoul-1"\nlog_level = "WARNING"\n[p2p]\nlisten = "[::1]:26656"\n'
        f'peers = ["10.0.0.2:26656"]\nobservers = ["{KEY}"]\nsend_queue = 16\n'
        "[sync]\nbatch_blocks = 10000\n"
        '[api]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]\n',
    )
    assert config.p2p.observers == [KEY] and config.sync.batch_blocks == 10_000
    assert config.api.trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]
    assert config.log_level == "WARNING" and config.p2p.listen == "[::1]:26656"


def test_a_node_opens_its_store_with_its_storage_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = layout.generate(str(tmp_path / "net"), 1, genesis_time_ms=int(time.time() * 1000))
    home = Home(network.nodes[0].home)
    config = home.load_config()
    config.storage.block_cache_mb = 24
    config.storage.write_buffer_mb = 3
    config.storage.compress = True
    config.storage.table_file_mb = 8
    Path(home.config).write_text(config.to_toml(), encoding="utf-8")
    seen = record_plyvel_options(monkeypatch)
    node = open_node(home.path)
    node.store.close()
    assert seen[0]["lru_cache_size"] == 24 * MIB
    assert seen[0]["write_buffer_size"] == 3 * MIB
    assert seen[0]["compression"] == "snappy"
    assert seen[0]["max_file_size"] == 8 * MIB


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ([], None),
        (["p2p.tls=false"], None),  # plaintext links on loopback: the fault relay's tests
        (["p2p.tls=false", "p2p.listen='0.0.0.0:26656'"], "refusing plaintext peer links"),
        (["p2p.listen='10.0.0.5:26656'"], None),
        (["api.listen='0.0.0.0:8080'"], "refusing a plaintext API on 0.0.0.0:8080"),
        (["api.listen='[::1]:8080'"], None),
        (["api.listen='localhost:8080'"], None),
        (["api.listen='10.0.0.5:8080'", "api.tls=true"], None),
    ],
)
def test_plaintext_is_refused_off_loopback(settings: list[str], problem: str | None) -> None:
    config = NodeConfig()
    for setting in settings:
        config.apply_setting(setting)
    found = plaintext_problem(config)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "\n" not in found
