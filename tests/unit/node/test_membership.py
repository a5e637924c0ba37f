"""node/membership.py: keys are added to a running node's allowed peers (handshake names
and TLS anchors) from config observers on SIGHUP; a bad config changes nothing. The set
change path runs end to end in test_validator_network.py ("unknown-first")."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ledger.crypto import PrivateKey
from node.config import Home, NodeConfig, P2PConfig
from node.link_identity import LinkIdentityError, peer_key
from node.membership import allow, reload_links
from node.tls import LinkTLS, new_identity

OWN, OLD, NEW = (PrivateKey.from_label(f"membership/{n}") for n in ("own", "old", "new"))


@dataclass
class FakePeers:
    names: dict[bytes, str]
    expected: list[bytes] = field(default_factory=list)
    observers: set[bytes] = field(default_factory=set)

    def expect(self, keys: list[bytes]) -> None:
        self.expected += keys


@dataclass
class FakeMember:
    peers: FakePeers
    link_tls: LinkTLS | None
    is_validator: bool = True


def member() -> FakeMember:
    tls = LinkTLS.ephemeral(OWN, [OLD.public_key])
    return FakeMember(FakePeers({OLD.public_key: "old"}), tls)


def test_allow_adds_names_and_tls_anchors_once() -> None:
    node = member()
    assert node.link_tls is not None
    _, der = new_identity(NEW)
    with pytest.raises(LinkIdentityError):
        peer_key(der, node.link_tls.allowed)
    assert allow(node, {NEW.public_key: "v-new", OLD.public_key: "old"}, expect=True) == [  # type: ignore[arg-type]
        NEW.public_key
    ]
    assert node.peers.names[NEW.public_key] == "v-new" and node.peers.expected == [NEW.public_key]
    assert peer_key(der, node.link_tls.allowed) == NEW.public_key
    assert allow(node, {NEW.public_key: "v-new"}, expect=True) == []  # type: ignore[arg-type]


def test_sighup_reads_the_observers_of_config_toml(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = Home(str(tmp_path))
    node = member()
    config = NodeConfig(name="n", p2p=P2PConfig(observers=[NEW.public_key.hex()]))
    Path(home.config).write_text(config.to_toml())
    reload_links(node, home)  # type: ignore[arg-type]
    assert node.peers.names[NEW.public_key].startswith("observer-")
    assert node.peers.expected == [], "an observer is allowed, not expected"
    assert node.peers.observers == {NEW.public_key}, "and a set change never retires it"
    Path(home.config).write_text("[p2p\nbroken")
    before = dict(node.peers.names)
    with caplog.at_level(logging.ERROR, logger="cityledger.node"):
        reload_links(node, home)  # type: ignore[arg-type]
    assert node.peers.names == before
    assert "config.toml not reloaded" in caplog.text
