"""Consensus key rotation in a node home (node/rotation.py, ``cityledger node rotate-key``):
the next key is born with its own empty signer state; the switch retires the old key and
its record together and never leaves a home that signs with another key's record."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from devnet import layout
from ledger.crypto import PrivateKey
from ledger.keyfile import read_key_file
from ledger.storage import MemoryStore
from ledger.validators import Validator, ValidatorSet
from node.background import watch_rotation
from node.config import APIConfig, Home, MempoolConfig, NodeConfig, P2PConfig
from node.consensus.errors import SignerStateError
from node.consensus.signer import Signer, SignerStateFile, open_signer
from node.rotation import (
    finish_interrupted,
    next_key_path,
    next_state_path,
    prepare,
    retired_dir,
    rotation_due,
    switch,
)
from node.runtime import Node
from node.tls import read_identity
from tests.unit.cli.kit import run
from tests.unit.node.chainkit import VALIDATOR_KEYS, make_genesis

CHAIN = "rotation-test"
GENESIS = make_genesis()


def _home(tmp_path: Path) -> Home:
    network = layout.generate(str(tmp_path / "net"), 1, base_port=39800, genesis_time_ms=1)
    return Home(network.nodes[0].home)


def _owner(path: str) -> object:
    return SignerStateFile(path).read()["validator"]


def test_rotate_key_writes_the_next_key_with_its_own_record_and_refuses_a_second(
    tmp_path: Path,
) -> None:
    home = _home(tmp_path)
    before = Path(home.key).read_bytes()
    made = run(["node", "rotate-key", "--home", home.path, "--json"])
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    new = read_key_file(next_key_path(home))
    assert doc["public_key"] == new.public_key.hex() != doc["current_public_key"]
    assert _owner(next_state_path(home)) == new.public_key
    assert os.stat(next_key_path(home)).st_mode & 0o077 == 0
    assert Path(home.key).read_bytes() == before  # nothing in force changes yet
    again = run(["node", "rotate-key", "--home", home.path])
    assert again.exit_code == 1 and new.public_key.hex() in again.output
    assert read_key_file(next_key_path(home)).public_key == new.public_key


def test_the_switch_retires_the_old_key_with_its_record_and_reissues_tls(tmp_path: Path) -> None:
    home = _home(tmp_path)
    old = read_key_file(home.key)
    Signer(old, CHAIN, SignerStateFile(home.signer_state)).save()
    new = prepare(home, CHAIN, None)
    aside = switch(home, old, new)
    assert aside == retired_dir(home, old.public_key)
    assert all(os.stat(d).st_mode & 0o077 == 0 for d in (aside, os.path.dirname(aside)))
    assert read_key_file(home.key).public_key == new.public_key
    assert _owner(home.signer_state) == new.public_key
    assert read_key_file(os.path.join(aside, "node_key.json")).public_key == old.public_key
    assert _owner(os.path.join(aside, "signer_state.msgpack")) == old.public_key
    assert not os.path.lexists(next_key_path(home))
    assert not os.path.lexists(next_state_path(home))
    read_identity(home.tls_key, home.tls_cert, new)  # issued by the new key, or raises
    # the node opens the new key's own record, though the chain has blocks
    signer = open_signer(
        new, CHAIN, SignerStateFile(home.signer_state), MemoryStore(), chain_height=50
    )
    assert signer.last_signed is None


def test_a_switch_cut_after_the_key_moved_is_finished_at_the_next_start(tmp_path: Path) -> None:
    home = _home(tmp_path)
    old = read_key_file(home.key)
    Signer(old, CHAIN, SignerStateFile(home.signer_state)).save()
    new = prepare(home, CHAIN, None)
    os.replace(next_key_path(home), home.key)  # the power cut came here
    with pytest.raises(SignerStateError):  # as it stands, the node would refuse to sign
        open_signer(new, CHAIN, SignerStateFile(home.signer_state), MemoryStore(), chain_height=5)
    finish_interrupted(home, new)
    assert _owner(home.signer_state) == new.public_key
    read_identity(home.tls_key, home.tls_cert, new)


def test_a_next_state_without_its_key_is_never_taken_for_the_current_one(tmp_path: Path) -> None:
    """prepare cut between the record and the key: the orphan record is of no key in use."""
    home = _home(tmp_path)
    old = read_key_file(home.key)
    Signer(old, CHAIN, SignerStateFile(home.signer_state)).save()
    Signer(PrivateKey.generate(), CHAIN, SignerStateFile(next_state_path(home))).save()
    finish_interrupted(home, old)
    assert _owner(home.signer_state) == old.public_key
    new = prepare(home, CHAIN, None)  # and a new prepare replaces the orphan
    assert _owner(next_state_path(home)) == new.public_key


def test_rotation_is_due_only_once_the_seat_is_handed_over() -> None:
    a, b, c, d, new = (PrivateKey.generate().public_key for _ in range(5))
    before = ValidatorSet([Validator(f"v{i}", k, 1) for i, k in enumerate((a, b, c, d))])
    after = ValidatorSet([Validator(f"v{i}", k, 1) for i, k in enumerate((new, b, c, d))])
    assert not rotation_due(before, a, new)
    assert rotation_due(after, a, new)
    assert not rotation_due(after, b, new)  # b keeps its seat: a waiting key is not used


def _node(next_key: PrivateKey | None) -> Node:
    config = NodeConfig(
        name="n0",
        p2p=P2PConfig(listen="127.0.0.1:1"),
        api=APIConfig(listen="127.0.0.1:2"),
        mempool=MempoolConfig(signature_processes=0),
    )
    return Node(config, GENESIS, VALIDATOR_KEYS[0], MemoryStore(), next_key=next_key)


@pytest.mark.parametrize("handed_over", [True, False])
async def test_a_running_node_stops_to_reopen_only_once_its_next_key_holds_its_seat(
    handed_over: bool,
) -> None:
    """The watch of :class:`node.runtime.Node`: with the seat handed to the waiting key it
    stops itself (``rotating``: serve then switches the files and opens it again); with
    the seat still its own, or handed to a key it does not hold, it keeps running."""
    upcoming = PrivateKey.generate()
    node = _node(upcoming)
    seats = [v for v in GENESIS.validators.validators if v.public_key != node.key.public_key]
    heir = upcoming if handed_over else PrivateKey.generate()
    after = ValidatorSet([*seats, Validator("n0", heir.public_key, 1)])
    node.chain.validators_at = lambda height: after  # type: ignore[method-assign]
    node._stop = stop = asyncio.Event()
    watch = asyncio.create_task(watch_rotation(node))
    try:
        await asyncio.wait_for(stop.wait(), 2.5)
    except TimeoutError:
        pass
    finally:
        watch.cancel()
    assert node.rotating is handed_over and stop.is_set() is handed_over
    node.signature_worker.close()
