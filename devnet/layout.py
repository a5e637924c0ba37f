"""Where a local network lives on disk, and its generation.

``<home>/network.json`` lists the nodes (name, home, p2p and API addresses) and,
while it runs, their process ids. ``<home>/<node>/`` is an ordinary node home
(see :mod:`node.config`), so every node can also be run by hand with
``cityledger node start --home <home>/<node>``.

The genesis is marked ``devnet``: its member keys are the demo's, derivable by anyone
with the source, so no network that is not a devnet accepts them. Each founding
agency's admin key is written to ``<home>/keys/<org>-admin.json`` (mode 0600) for
trying the admin commands. ``docs/operations.md`` ("Founding a network") is the way to
make a real network, with keys that never leave their agency.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from devnet.demo_keys import operators_in_turn
from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.founding_checks import DEFAULT_MIN_VALIDATORS, MIN_VALIDATORS_KEY
from ledger.genesis import Genesis, Organisation, founding_consensus
from ledger.keyfile import make_private_dir, write_key_file
from ledger.storage import open_leveldb
from ledger.validators import Validator, ValidatorSet
from node.config import APIConfig, Home, NodeConfig, P2PConfig
from node.tls import ensure_identity

CITIES = ("busan", "sejong", "incheon", "daejeon", "gwangju", "ulsan", "suwon")


class DevnetError(LedgerError):
    code = "devnet"


@dataclass
class NodeEntry:
    name: str
    home: str
    p2p: str
    api: str
    pid: int | None = None
    https: bool = False  # the node serves its API over HTTPS ([api] tls)

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.api}"


@dataclass
class Network:
    home: str
    chain_id: str
    nodes: list[NodeEntry] = field(default_factory=list)

    @property
    def file(self) -> str:
        return os.path.join(self.home, "network.json")

    def save(self) -> None:
        tmp = self.file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(
                {"chain_id": self.chain_id, "nodes": [asdict(n) for n in self.nodes]}, f, indent=2
            )
        os.replace(tmp, self.file)

    @classmethod
    def load(cls, home: str) -> Network:
        path = os.path.join(home, "network.json")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            return cls(home, doc["chain_id"], [NodeEntry(**n) for n in doc["nodes"]])
        except FileNotFoundError:
            raise DevnetError(f"no devnet at {home} (run `cityledger devnet up` first)") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DevnetError(f"{path} is corrupt: {exc}") from None

    def genesis_hash(self) -> str | None:
        """This devnet's genesis hash (hex), from its first node's home."""
        try:
            return Genesis.load(Home(self.nodes[0].home).genesis).hash.hex()
        except (IndexError, OSError, LedgerError):
            return None

    def node(self, name: str) -> NodeEntry:
        for n in self.nodes:
            if n.name == name or n.name.endswith(name):
                return n
        raise DevnetError(f"no node {name!r}; nodes are {', '.join(n.name for n in self.nodes)}")


def founding_organisations() -> list[Organisation]:
    """The founding organisations: the demo's agencies, carriers, traders and prosumers."""
    from devnet.demo import genesis_organisations

    return list(genesis_organisations())


def generate(
    home: str,
    validators: int,
    *,
    chain_id: str = "cityledger-devnet",
    base_port: int = 26600,
    genesis_time_ms: int,
    block_interval_ms: int = 0,
    empty_block_interval_ms: int | None = None,
) -> Network:
    """Create keys, genesis and configs for ``validators`` nodes on loopback.

    ``empty_block_interval_ms``: each node's idle heartbeat (``[consensus]``); None keeps
    the production default. Tests that wait for heights without sending a transaction
    give a short one."""
    if os.path.exists(os.path.join(home, "network.json")):
        raise DevnetError(f"{home} already holds a devnet")
    if not 1 <= validators <= len(CITIES) * 3:
        raise DevnetError(f"--validators must be 1..{len(CITIES) * 3}")
    if not os.path.isdir(home):
        make_private_dir(home)  # an existing directory the operator named is left as it is
    names = node_names(validators)
    keys = [PrivateKey.generate() for _ in names]
    organisations = tuple(founding_organisations())
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        validators=ValidatorSet(
            tuple(Validator(name, key.public_key, 1) for name, key in zip(names, keys, strict=True))
        ),
        organisations=organisations,
        consensus=founding_consensus(min_block_interval_ms=block_interval_ms),
        app=_app_params(validators),
        devnet=True,
        validator_orgs=operators_in_turn([k.public_key for k in keys], organisations),
    )
    write_admin_keys(home, genesis)
    network = Network(home, chain_id)
    for i, (name, key) in enumerate(zip(names, keys, strict=True)):
        node_home = Home(os.path.join(home, name))
        make_private_dir(node_home.path)  # the key, the store, the signer state: owner only
        write_key_file(node_home.key, key)
        ensure_identity(node_home.tls_key, node_home.tls_cert, key)  # its peer links' TLS
        open_leveldb(node_home.data, create=True).close()  # only home creation makes a store
        with open(node_home.genesis, "w", encoding="utf-8") as f:
            f.write(genesis.to_json())
        p2p, api = node_addresses(i, base_port)
        peers = [node_addresses(j, base_port)[0] for j in range(validators) if j != i]
        config = NodeConfig(
            name=name, p2p=P2PConfig(listen=p2p, peers=peers), api=APIConfig(listen=api)
        )
        if empty_block_interval_ms is not None:
            config.consensus.empty_block_interval_ms = empty_block_interval_ms
        with open(node_home.config, "w", encoding="utf-8") as f:
            f.write(config.to_toml())
        network.nodes.append(NodeEntry(name, node_home.path, p2p, api))
    network.save()
    return network


def node_names(validators: int) -> list[str]:
    return [f"{CITIES[i % len(CITIES)]}-{i}" for i in range(validators)]


def node_addresses(i: int, base_port: int) -> tuple[str, str]:
    """(p2p, API) address of node ``i``: ports from ``base_port`` and ``base_port + 100``."""
    return f"127.0.0.1:{base_port + i}", f"127.0.0.1:{base_port + 100 + i}"


def _app_params(validators: int) -> dict[str, object]:
    from devnet.demo import app_params

    params: dict[str, object] = dict(app_params())
    if validators < DEFAULT_MIN_VALIDATORS:  # a devnet may be smaller than a real network
        params[MIN_VALIDATORS_KEY] = validators
    return params


def write_admin_keys(home: str, genesis: Genesis) -> list[str]:
    """``<home>/keys/<org>-admin.json`` (mode 0600) for each founding agency of
    ``genesis`` whose admin is a demo key; returns the paths written."""
    from devnet.demo_keys import demo_admin_keys

    admins = {m.public_key for o in genesis.organisations for m in o.members if "admin" in m.roles}
    agencies = {o.id for o in genesis.organisations if o.kind == "agency"}
    keys_dir = os.path.join(home, "keys")
    written = []
    for org, key in demo_admin_keys().items():
        path = os.path.join(keys_dir, f"{org}-admin.json")
        if org in agencies and key.public_key in admins and not os.path.exists(path):
            make_private_dir(keys_dir)
            write_key_file(path, key)
            written.append(path)
    return written
