"""Validator-set changes through the executor, the chain and the light client.

The product has no transaction kind that changes the set yet (governance will call
``TxContext.schedule_validator_updates``); these tests register a test-only handler
in the registry for the duration of a test."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from contracts import validator_state as vst
from contracts.errors import ContractError
from ledger.crypto import PrivateKey
from ledger.encoding import encode
from ledger.state import StateTree
from ledger.storage import WriteBatch, keys
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet, ValidatorUpdate, apply_updates
from lightclient import validator_history as vh
from lightclient.errors import VerificationError
from lightclient.headers import check_certificate
from node import membership
from node.api.validator_history import history, validators_answer
from node.audit import ChainAuditor, StoreSource
from node.config import NodeConfig, P2PConfig
from node.executor import ExecutedBlock, InvalidBlock
from node.link_identity import LinkIdentityError, peer_key
from node.peers import PeerManager
from node.runtime import allowed_peers
from node.tls import LinkTLS, new_identity
from node.validator_peers import retired
from tests.unit.chain_kit import precommit_certificate
from tests.unit.node.chainkit import ADMIN, CHAIN, VALIDATOR_KEYS, Kit
from tests.unit.node.valset_kit import SEEN, registered, updates_tx

NEW = PrivateKey.from_label("node-test-validator-new")


@pytest.fixture(autouse=True)
def _hook() -> Iterator[None]:
    with registered(VALIDATOR_KEYS[0].public_key):
        yield
    vh.forget(Kit().genesis)


def _updates_tx(nonce: int, *updates: ValidatorUpdate) -> Transaction:
    return updates_tx(ADMIN, CHAIN, nonce, *updates)


def _commit(kit: Kit, txs: list[Transaction], signers: list[PrivateKey]) -> ExecutedBlock:
    executed = kit.build(txs)
    kit.executor.commit(executed, precommit_certificate(executed.block, signers, CHAIN))
    return executed


OLD = VALIDATOR_KEYS[:3]
ADD = ValidatorUpdate(NEW.public_key, 1, "v-new")
DROP = ValidatorUpdate(VALIDATOR_KEYS[3].public_key, 0, "v3")


def test_a_change_made_by_block_h_is_in_force_from_h_plus_2() -> None:
    kit = Kit()
    genesis_set = kit.genesis.validators
    b1 = _commit(kit, [_updates_tx(0, ADD, DROP)], OLD).block.header
    new = apply_updates(genesis_set, [ADD, DROP])
    assert [v.name for v in new.validators] == ["v0", "v1", "v2", "v-new"]
    assert (b1.validators_hash, b1.next_validators_hash) == (genesis_set.hash, genesis_set.hash)
    b2 = _commit(kit, [], OLD).block.header
    assert (b2.validators_hash, b2.next_validators_hash) == (genesis_set.hash, new.hash)
    b3 = _commit(kit, [], [*OLD, NEW]).block.header
    assert (b3.validators_hash, b3.next_validators_hash) == (new.hash, new.hash)
    assert kit.chain.validators_at(2) == genesis_set and kit.chain.validators_at(3) == new
    state = StateTree(kit.store, kit.chain.head().state_root)
    assert vst.current_set(state, kit.genesis) == new
    assert vst.last_signed(state, VALIDATOR_KEYS[0].public_key) == 2
    assert vst.last_signed(state, VALIDATOR_KEYS[3].public_key) is None  # never signed
    assert vst.last_signed(state, NEW.public_key) is None  # its cert (3) is in block 4


def test_the_context_sees_the_set_in_force_and_the_signed_heights() -> None:
    kit = Kit()
    _commit(kit, [_updates_tx(0, ADD)], OLD)
    _commit(kit, [_updates_tx(1, ValidatorUpdate(NEW.public_key, 2, "v-new"))], OLD)
    _commit(kit, [], [*OLD, NEW])
    _commit(kit, [_updates_tx(2, DROP)], [*OLD, NEW])
    (h1, set1, signed1), (h2, set2, signed2), (h4, set4, signed4) = SEEN
    assert (h1, set1, signed1) == (1, kit.genesis.validators, None)
    assert (h2, set2, signed2) == (2, kit.genesis.validators, 1)  # block 2 carries cert 1
    assert h4 == 4 and NEW.public_key in set4 and signed4 == 3
    assert kit.chain.validators_at(4).power_of(NEW.public_key) == 2


def test_another_node_replays_the_changes_and_refuses_a_removed_validators_certificate() -> None:
    leader, follower = Kit(), Kit()
    blocks = [_commit(leader, [_updates_tx(0, ADD, DROP)], OLD)]
    blocks.append(_commit(leader, [], OLD))
    blocks.append(_commit(leader, [], [*OLD, NEW]))
    for executed in blocks:
        checked = follower.executor.validate_block(executed.block, None)
        follower.executor.commit(checked, leader.chain.certificate(executed.block.height))  # type: ignore[arg-type]
    assert follower.chain.head().block_hash == leader.chain.head().block_hash
    # block 4 carrying a certificate of block 3 signed with the removed key v3
    removed_cert = precommit_certificate(
        blocks[2].block, [*VALIDATOR_KEYS[:2], VALIDATOR_KEYS[3]], CHAIN
    )
    head = follower.chain.head()
    forged = follower.executor.build_block([], head.time_ms + 1, NEW.public_key, removed_cert)
    with pytest.raises(InvalidBlock, match=r"not a validator|power"):
        follower.executor._check_last_cert(forged.block)


def test_bad_updates_are_refused_and_change_nothing() -> None:
    kit = Kit()
    gone = ValidatorUpdate(NEW.public_key, 0, "v-new")
    renamed = ValidatorUpdate(VALIDATOR_KEYS[0].public_key, 1, "other")
    executed = _commit(kit, [_updates_tx(0, gone), _updates_tx(1, renamed)], OLD)
    assert [r.code for r in executed.receipts] == ["wrong_state"] * 2
    assert kit.chain.validator_changes() == []
    with pytest.raises(Exception, match="power"):
        ValidatorUpdate(NEW.public_key, -1, "x")
    with pytest.raises(ContractError):
        vst.scheduled_set(StateTree(kit.store), kit.genesis, [gone])


def test_the_light_client_follows_certified_changes_from_genesis_alone() -> None:
    kit = Kit()
    _commit(kit, [_updates_tx(0, ADD, DROP)], OLD)
    _commit(kit, [], OLD)
    b3 = _commit(kit, [], [*OLD, NEW]).block
    items = history(kit.chain)
    assert [i["height"] for i in items] == [2]  # type: ignore[index]
    answer = validators_answer(kit.chain, 3)
    assert answer["hash"] == kit.chain.validators_at(3).hash
    cert3 = kit.chain.certificate(3)
    assert cert3 is not None
    with pytest.raises(VerificationError):  # without the history: the genesis set is wrong
        check_certificate(b3.header, cert3, kit.genesis)
    known = vh.remember(vh.verify_history(items, kit.genesis))
    assert known.at(2) == kit.genesis.validators and NEW.public_key in known.at(3)
    assert check_certificate(b3.header, cert3, kit.genesis).power == 4


def test_a_forged_or_gapped_history_is_refused() -> None:
    kit = Kit()
    _commit(kit, [_updates_tx(0, ADD)], OLD)
    _commit(kit, [], OLD)
    item = history(kit.chain)[0]
    assert isinstance(item, dict)
    other = ValidatorSet((Validator("evil", NEW.public_key, 5),))
    with pytest.raises(VerificationError, match="not the one header"):
        vh.verify_history([{**item, "validators": other.to_obj()}], kit.genesis)
    weak = precommit_certificate(kit.chain.block(2), VALIDATOR_KEYS[:2], CHAIN)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="certificate"):
        vh.verify_history([{**item, "certificate": weak.to_obj()}], kit.genesis)
    with pytest.raises(VerificationError, match="out of height order"):
        vh.verify_history([item, item], kit.genesis)


def _chain_with_changes() -> Kit:
    """Twelve blocks: v-new added (block 1), v3 removed (block 5), v-new re-weighted (8)."""
    kit = Kit()
    signers = OLD
    for height in range(1, 13):
        txs = []
        if height == 1:
            txs = [_updates_tx(0, ADD)]
        elif height == 5:
            txs = [_updates_tx(1, DROP)]
        elif height == 8:
            txs = [_updates_tx(2, ValidatorUpdate(NEW.public_key, 3, "v-new"))]
        if height >= 3:
            signers = [*VALIDATOR_KEYS[:3], NEW]  # >2/3 of every set in force from 3 on
        _commit(kit, txs, signers)
    assert [h for h, _ in kit.chain.validator_changes()] == [3, 7, 10]
    return kit


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
def test_the_offline_audit_follows_the_changes(workers: int) -> None:
    kit = _chain_with_changes()
    report = ChainAuditor(kit.genesis, workers=workers).run(
        StoreSource(kit.store), compare_with=kit.store
    )
    assert report.ok, report.findings
    assert report.heights == 12 and (workers == 0 or report.segments >= 2)


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "segments"])
def test_the_audit_finds_a_forged_validator_change_row(workers: int) -> None:
    kit = _chain_with_changes()
    forged = ValidatorSet((Validator("evil", NEW.public_key, 5),))
    kit.store.write(_batch(keys.valset_key(7), encode(forged.to_obj())))
    report = ChainAuditor(kit.genesis, workers=workers).run(
        StoreSource(kit.store), compare_with=kit.store
    )
    assert not report.ok
    assert any("validator-set change" in f.record for f in report.findings), report.findings


def _batch(key: bytes, value: bytes) -> WriteBatch:
    batch = WriteBatch()
    batch.put(key, value)
    return batch


def test_a_removed_validators_key_is_retired_from_the_links_once_it_votes_nowhere() -> None:
    kit = Kit()
    gone = VALIDATOR_KEYS[3].public_key
    config = NodeConfig(name="n")
    _commit(kit, [_updates_tx(0, ADD, DROP)], OLD)
    _commit(kit, [], OLD)  # head 2: v3 still votes at 2
    assert retired(kit.chain) == set() and gone in allowed_peers(kit.genesis, config, kit.chain)
    key = VALIDATOR_KEYS[0]
    tls = LinkTLS.ephemeral(key, allowed_peers(kit.genesis, config, kit.chain))
    peers = PeerManager(
        key, CHAIN, allowed_peers(kit.genesis, config, kit.chain), P2PConfig(), _ignore, _ignore
    )
    member = SimpleNamespace(chain=kit.chain, peers=peers, link_tls=tls)
    assert membership.retire(member) == []  # type: ignore[arg-type]
    _commit(kit, [], [*OLD, NEW])  # head 3: the sets at 3, 4 and 5 lack v3
    assert retired(kit.chain) == {gone}
    names = allowed_peers(kit.genesis, config, kit.chain)
    assert gone not in names and NEW.public_key in names
    assert membership.retire(member) == ["v3"]  # type: ignore[arg-type]
    assert gone not in peers.names and gone not in tls.allowed
    with pytest.raises(LinkIdentityError):
        peer_key(new_identity(VALIDATOR_KEYS[3])[1], tls.allowed)
    # an operator who lists it as an observer keeps it
    kept = NodeConfig(name="n", p2p=P2PConfig(observers=[gone.hex()]))
    assert gone in allowed_peers(kit.genesis, kept, kit.chain)
    peers.names[gone], peers.observers = "observer", {gone}
    assert membership.retire(member) == []  # type: ignore[arg-type]


async def _ignore(*_: object) -> None:
    return None
