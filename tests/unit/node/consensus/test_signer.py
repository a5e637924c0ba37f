"""The double-sign guard: durable last-signed state, identical re-signs, refusals
across restarts (memory store and LevelDB), and the durable lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.crypto import Purpose, verify
from ledger.storage import KVStore, MemoryStore, WriteBatch, open_leveldb
from ledger.storage import keys as K
from ledger.votes import NIL, Proposal, Vote
from node.consensus import (
    ConsensusCore,
    DoubleSignRefused,
    SignerStateError,
    SignRefused,
    Step,
)
from node.consensus.signer import STATE_KEY, Signer
from tests.sim.fixtures import CHAIN_ID, KEYS, validator_set
from tests.unit.node.consensus.core_kit import PRECOMMIT, PREVOTE, A, B


class SpyStore(MemoryStore):
    """Records the ``sync`` flag of every write; can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[bool] = []
        self.fail = False

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        if self.fail:
            raise OSError("disk full")
        self.syncs.append(sync)
        super().write(batch, sync=sync)


def test_signatures_are_real_and_steps_move_forward() -> None:
    s = Signer(KEYS[0], CHAIN_ID)
    p = s.sign_proposal(1, 0, A, -1)
    p.verify_signature(CHAIN_ID)
    s.sign_vote(PREVOTE, 1, 0, A).verify_signature(CHAIN_ID)
    s.sign_vote(PRECOMMIT, 1, 0, A).verify_signature(CHAIN_ID)
    s.sign_vote(PREVOTE, 1, 1, NIL)
    s.sign_vote(PREVOTE, 2, 0, B)
    assert s.last_signed == (2, 0, int(Step.PREVOTE))


def test_identical_resign_returns_the_identical_signature() -> None:
    s = Signer(KEYS[0], CHAIN_ID)
    first = s.sign_vote(PREVOTE, 3, 1, A)
    again = s.sign_vote(PREVOTE, 3, 1, A)
    assert again == first and again.signature == first.signature
    p = s.sign_proposal(3, 2, B, 1)
    assert s.sign_proposal(3, 2, B, 1).signature == p.signature


@pytest.mark.parametrize(
    "second",
    [
        lambda s: s.sign_vote(PREVOTE, 3, 1, B),  # other value, same step
        lambda s: s.sign_vote(PREVOTE, 3, 1, NIL),
        lambda s: s.sign_proposal(3, 1, A, -1),  # earlier step, same round
        lambda s: s.sign_vote(PRECOMMIT, 3, 0, A),  # earlier round
        lambda s: s.sign_vote(PREVOTE, 2, 5, A),  # earlier height
    ],
)
def test_conflicting_or_earlier_requests_are_refused(second: object) -> None:
    s = Signer(KEYS[0], CHAIN_ID)
    s.sign_vote(PREVOTE, 3, 1, A)
    with pytest.raises(DoubleSignRefused) as info:
        second(s)  # type: ignore[operator]
    assert info.value.code == "double_sign_refused"
    assert s.last_signed == (3, 1, int(Step.PREVOTE))


def test_an_older_identical_message_is_refused_once_past_it() -> None:
    s = Signer(KEYS[0], CHAIN_ID)
    s.sign_vote(PREVOTE, 3, 1, A)
    s.sign_vote(PRECOMMIT, 3, 1, A)
    with pytest.raises(DoubleSignRefused):
        s.sign_vote(PREVOTE, 3, 1, A)


def test_state_is_written_synced_before_the_signature_is_returned() -> None:
    store = SpyStore()
    s = Signer(KEYS[0], CHAIN_ID, store)
    vote = s.sign_vote(PREVOTE, 1, 0, A)
    assert store.syncs == [True]
    assert store.get(STATE_KEY) is not None and STATE_KEY.startswith(K.SIGNER)
    store.fail = True
    with pytest.raises(OSError):
        s.sign_vote(PRECOMMIT, 1, 0, A)  # no durable record, no signature
    store.fail = False
    assert s.last_signed == (1, 0, int(Step.PREVOTE))
    assert s.sign_vote(PREVOTE, 1, 0, A) == vote


def _restart_cycle(open_store: object, close: bool) -> None:
    store: KVStore = open_store()  # type: ignore[operator]
    s = Signer(KEYS[1], CHAIN_ID, store)
    s.sign_proposal(4, 2, A, -1)
    signed = s.sign_vote(PREVOTE, 4, 2, A)
    if close:
        store.close()
        store = open_store()  # type: ignore[operator]
    # crash between "signed" and "sent": the restarted signer re-signs only the same thing
    restarted = Signer(KEYS[1], CHAIN_ID, store)
    assert restarted.last_signed == (4, 2, int(Step.PREVOTE))
    assert restarted.last_round(4) == 2 and restarted.last_round(5) is None
    assert restarted.sign_vote(PREVOTE, 4, 2, A).signature == signed.signature
    for attempt in (
        lambda: restarted.sign_vote(PREVOTE, 4, 2, B),
        lambda: restarted.sign_vote(PREVOTE, 4, 2, NIL),
        lambda: restarted.sign_proposal(4, 2, B, -1),
        lambda: restarted.sign_vote(PRECOMMIT, 4, 1, A),
    ):
        with pytest.raises(DoubleSignRefused):
            attempt()
    restarted.sign_vote(PRECOMMIT, 4, 2, A)
    if close:
        store.close()


def test_refusal_survives_a_restart_with_a_memory_store() -> None:
    store = MemoryStore()
    _restart_cycle(lambda: store, close=False)


def test_refusal_survives_a_restart_with_leveldb(tmp_path: Path) -> None:
    _restart_cycle(lambda: open_leveldb(str(tmp_path / "db"), create=True), close=True)


def test_lock_and_its_polka_are_durable_and_per_height() -> None:
    store = MemoryStore()
    s = Signer(KEYS[0], CHAIN_ID, store)
    polka = [Vote.create(KEYS[i], CHAIN_ID, PREVOTE, 7, 1, A) for i in (1, 2, 3)]
    assert s.lock(7) is None
    s.sign_vote(PREVOTE, 7, 1, A)
    s.sign_vote(PRECOMMIT, 7, 1, A, polka)
    s.sign_vote(PREVOTE, 7, 2, NIL)  # the lock stays through later votes at the height
    s.sign_vote(PRECOMMIT, 7, 2, NIL)
    lock = Signer(KEYS[0], CHAIN_ID, store).lock(7)
    assert lock is not None and (lock.round, lock.block_hash) == (1, A)
    assert list(lock.polka) == polka
    s.sign_vote(PREVOTE, 8, 0, B)
    assert s.lock(8) is None and s.lock(7) is None


def test_state_of_another_key_or_corrupt_state_is_refused() -> None:
    store = MemoryStore()
    Signer(KEYS[0], CHAIN_ID, store).sign_vote(PREVOTE, 1, 0, A)
    with pytest.raises(SignerStateError):
        Signer(KEYS[1], CHAIN_ID, store)
    batch = WriteBatch()
    batch.put(STATE_KEY, b"\x93garbage")
    store.write(batch)
    with pytest.raises(SignerStateError):
        Signer(KEYS[0], CHAIN_ID, store)


def test_signature_domains_are_separate() -> None:
    s = Signer(KEYS[0], CHAIN_ID)
    p = s.sign_proposal(1, 0, A, -1)
    verify(p.proposer, Purpose.PROPOSAL, CHAIN_ID, Proposal.sign_bytes(1, 0, A, -1), p.signature)


def test_the_core_does_not_send_what_the_signer_refuses() -> None:
    """A core restarted with an old signer state: it re-sends identical votes only."""
    store = MemoryStore()
    Signer(KEYS[0], CHAIN_ID, store).sign_vote(PREVOTE, 1, 0, A)  # before the crash
    core = ConsensusCore(
        chain_id=CHAIN_ID, validators=validator_set(4), signer=Signer(KEYS[0], CHAIN_ID, store)
    )
    core.start()
    out = core.on_timeout(1, 0, Step.PROPOSE)  # would prevote nil: a different message
    assert not [e for e in out if type(e).__name__ == "Broadcast"]
    [refused] = [e for e in out if isinstance(e, SignRefused)]
    assert refused.error.code == "double_sign_refused"
    assert core.counters["double_sign_refused"] == 1
    assert core.step == Step.PREVOTE  # the state machine moves on; it just does not send


def test_own_messages_of_the_height_are_kept_and_old_heights_dropped() -> None:
    store = MemoryStore()
    s = Signer(KEYS[0], CHAIN_ID, store)
    sent = [
        s.sign_proposal(5, 0, A, -1),
        s.sign_vote(PREVOTE, 5, 0, A),
        s.sign_vote(PRECOMMIT, 5, 0, NIL),
        s.sign_vote(PREVOTE, 5, 1, NIL),
    ]
    s.sign_vote(PREVOTE, 5, 1, NIL)  # an identical re-sign adds nothing
    restarted = Signer(KEYS[0], CHAIN_ID, store)
    assert list(restarted.signed_messages(5)) == sent
    assert restarted.signed_messages(4) == ()
    nxt = restarted.sign_vote(PREVOTE, 6, 0, B)
    assert list(Signer(KEYS[0], CHAIN_ID, store).signed_messages(6)) == [nxt]
    assert len(list(store.iterate(K.SIGNER + b"msg"))) == 1  # height 5's are gone
