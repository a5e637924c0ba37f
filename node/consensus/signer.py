"""Double-sign protection: a signer that never signs two different things for one
(height, round, step), across crashes and restarts.

Before a signature leaves :meth:`Signer.sign_vote` / :meth:`Signer.sign_proposal`,
the signer makes its new *last signed* state — (height, round, step), the exact
signed bytes and the signature — durable. A validator node keeps it in its own file
in the node home, **outside** the chain store (:class:`SignerStateFile`,
``<home>/signer_state.msgpack``, like Tendermint's ``priv_validator_state.json``):
a damaged chain store is remedied by emptying ``data/``, and that must not erase
the record of what the key signed. Tests, the simulator and benchmarks may pass a
:class:`~ledger.storage.KVStore` instead (also the layout of nodes before the file
existed, which :func:`open_signer` migrates). How either is stored — the file's
format and atomic replace, the KVStore layout — is :mod:`node.consensus.signer_state`.
Then, for any later request at (h, r, s):

* (h, r, s) above the last one: sign, persist, return;
* (h, r, s) equal to the last one and the same bytes: return the stored signature
  (a node that crashed between "signed" and "sent" re-sends exactly the same
  message, never a second, different one);
* anything else — another message at the same (h, r, s), or any earlier
  (h, r, s): :class:`DoubleSignRefused`. The core then simply does not send.

Besides, it refuses any height at or below its *floor*: the node's committed head
(``committed_height``) and, after an operator reset of a lost state, the height the
node had caught up to when it started (see :func:`open_signer`).

The signer also remembers the last non-nil precommit it signed, with the 2f+1
prevotes that justified it (the paper's lockedValue/lockedRound are set exactly
when such a precommit is signed, lines 38-40). A restarted node therefore re-locks
where it was locked — forgetting the lock would let one crash plus f byzantine
validators fork — and can show the polka behind its lock to the others, who may
need it to accept the locked value again (line 28) and so to make progress. With
the lock it keeps the locked *block* itself (``block_source`` supplies its bytes):
if every validator precommitted a block and crashed before writing it, the locked
value must still be proposable after the restart, or the height never ends.

Finally it keeps every message it signed at its current height, written in the same
durable write (a small write-ahead log of our own messages, emptied as the next
height begins). The restarted core puts them back into its log so gossip delivers
them: the paper's liveness assumes every message of a correct process eventually
arrives, and a message that only its crashed author ever held otherwise never does
— a lagging round could then wait forever for 2f+1 votes with no timer running.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ledger.crypto import PrivateKey, Purpose
from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError, ValidationError
from ledger.schema import COUNT, PUBLIC_KEY, AnyValue, Bool, Bytes, List, Str, Struct, read
from ledger.storage import KVStore, WriteBatch
from ledger.storage import keys as K
from ledger.votes import NIL, Proposal, Vote, VoteType
from node.consensus.errors import DoubleSignRefused, SignerStateError
from node.consensus.signer_state import (
    BLOCK_KEY,
    MAX_POLKA,
    MESSAGE_PREFIX,
    STATE_KEY,
    Lock,
    SignedState,
    SignerStateFile,
    decode_signed,
    decode_state,
    encode_signed,
    forget_legacy,
    message_key,
    state_obj,
)
from node.consensus.types import Step

__all__ = ["STATE_KEY", "Lock", "Signer", "SignerStateFile", "open_signer"]

log = logging.getLogger("cityledger.signer")

MAX_MESSAGES = 3 * 256  # per height: the newest 256 rounds' worth
_FILE_BODY = Struct(
    {
        "chain_id": Str(max_len=256),
        "validator": PUBLIC_KEY,
        "floor": COUNT,
        "floor_pending": Bool(),
        "state": AnyValue(),
        "messages": List(AnyValue(), max_len=MAX_MESSAGES),
        "lock_block": Bytes(),
    }
)
M = TypeVar("M", Proposal, Vote)


@dataclass(frozen=True, slots=True)
class _Ask:
    """One message to sign: where it is, its bytes, and the lock a precommit of a
    block takes (``lock``, NIL otherwise, with the polka behind it)."""

    height: int
    round: int
    step: Step
    purpose: Purpose
    message: bytes
    lock: bytes
    polka: tuple[Vote, ...]

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))


class Signer:
    """Signs consensus messages for one validator key on one chain.

    ``store=None`` keeps the state in memory only (tests, observers); a real
    validator passes its :class:`SignerStateFile` (see :func:`open_signer`); a
    :class:`KVStore` works too (tests, the simulator).
    """

    def __init__(
        self,
        key: PrivateKey,
        chain_id: str,
        store: KVStore | SignerStateFile | None = None,
        *,
        committed_height: Callable[[], int] | None = None,
    ) -> None:
        self._key = key
        self.chain_id = chain_id
        self.public_key = key.public_key
        self._store = store
        self._state: SignedState | None = None
        # our own signed messages of the current height, by storage key (oldest first)
        self._messages: dict[bytes, Proposal | Vote] = {}
        self._stale_keys: list[bytes] = []  # stored messages of earlier heights
        self._lock_block = b""  # the locked block's bytes, if we had them
        self._floor = 0  # never sign at or below this height
        self._floor_pending = False  # reset: no signing until raise_floor()
        #: the node's committed head: never sign at or below it
        self.committed_height = committed_height
        #: the bytes of a block by hash, kept with the lock when we precommit it
        self.block_source: Callable[[bytes], bytes | None] | None = None
        if isinstance(store, SignerStateFile):
            if store.exists():
                self._load_file(store)
        elif store is not None:
            self._state = self._load()
            self._load_messages()
            raw = store.get(BLOCK_KEY)
            self._lock_block = raw if raw is not None and self._state is not None else b""

    # --- what the core asks ---------------------------------------------------------------

    def sign_proposal(
        self, height: int, round_: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        message = Proposal.sign_bytes(height, round_, block_hash, valid_round)

        def build(signature: bytes) -> Proposal:
            return Proposal(height, round_, block_hash, valid_round, self.public_key, signature)

        ask = _Ask(height, round_, Step.PROPOSE, Purpose.PROPOSAL, message, NIL, ())
        return self._sign(ask, build)

    def sign_vote(
        self,
        vote_type: VoteType,
        height: int,
        round_: int,
        block_hash: bytes,
        justification: Sequence[Vote] = (),
    ) -> Vote:
        """Sign a vote; for a precommit of a block, ``justification`` is the polka
        (2f+1 prevotes) it locks on, kept with the lock."""
        step = Step.PREVOTE if vote_type == VoteType.PREVOTE else Step.PRECOMMIT
        lock = block_hash if step is Step.PRECOMMIT else NIL
        message = Vote.sign_bytes(vote_type, height, round_, block_hash)
        polka = tuple(justification[:MAX_POLKA]) if lock else ()

        def build(signature: bytes) -> Vote:
            return Vote(vote_type, height, round_, block_hash, self.public_key, signature)

        return self._sign(_Ask(height, round_, step, Purpose.VOTE, message, lock, polka), build)

    @property
    def last_signed(self) -> tuple[int, int, int] | None:
        """(height, round, step) of the last signature, or None if never signed."""
        return self._state.hrs if self._state else None

    @property
    def floor(self) -> int:
        """Never signs at or below this height (besides the committed head)."""
        return self._floor

    @property
    def floor_pending(self) -> bool:
        """True after a reset until :meth:`raise_floor`: nothing is signed meanwhile."""
        return self._floor_pending

    def last_round(self, height: int) -> int | None:
        """The last round signed in at ``height`` (where a restarted core resumes)."""
        state = self._state
        return state.round if state is not None and state.height == height else None

    def lock(self, height: int) -> Lock | None:
        """The last non-nil precommit signed at ``height``: round, block, polka."""
        state = self._state
        if state is None or state.lock_height != height:
            return None
        return Lock(state.lock_round, state.lock_hash, state.lock_polka)

    def lock_block(self, height: int) -> bytes | None:
        """The bytes of the block locked on at ``height``, if they were kept."""
        state = self._state
        if state is None or state.lock_height != height or not self._lock_block:
            return None
        return self._lock_block

    def signed_messages(self, height: int) -> tuple[Proposal | Vote, ...]:
        """Everything signed at ``height`` (if it is the last height signed at)."""
        state = self._state
        if state is None or state.height != height:
            return ()
        return tuple(self._messages.values())

    # --- floor and reset ------------------------------------------------------------------

    def raise_floor(self, height: int) -> None:
        """Never sign at ``height`` or below from now on (durably); ends a pending reset."""
        if height <= self._floor and not self._floor_pending:
            return
        floor = max(self._floor, height)
        if isinstance(self._store, SignerStateFile):
            self._store.write(
                self._file_body(self._state, self._messages, self._lock_block, floor, False)
            )
        self._floor, self._floor_pending = floor, False

    def reset(self) -> None:
        """Forget everything (operator's ``--reset-signer-state``), durably, and sign
        nothing until :meth:`raise_floor` (the node calls it once caught up)."""
        if isinstance(self._store, SignerStateFile):
            self._store.write(self._file_body(None, {}, b"", 0, True))
        self._state = None
        self._messages = {}
        self._lock_block = b""
        self._floor, self._floor_pending = 0, True

    def adopt(self, other: Signer) -> None:
        """Take over ``other``'s state (a migration from the chain store) and persist it."""
        if isinstance(self._store, SignerStateFile):
            self._store.write(
                self._file_body(
                    other._state,
                    other._messages,
                    other._lock_block,
                    other._floor,
                    other._floor_pending,
                )
            )
        self._state = other._state
        self._messages = dict(other._messages)
        self._lock_block = other._lock_block
        self._floor, self._floor_pending = other._floor, other._floor_pending

    def save(self) -> None:
        """Write the current state (a fresh file for a new validator)."""
        if isinstance(self._store, SignerStateFile):
            self._store.write(
                self._file_body(
                    self._state, self._messages, self._lock_block, self._floor, self._floor_pending
                )
            )

    # --- the rules ------------------------------------------------------------------------

    def _sign(self, ask: _Ask, build: Callable[[bytes], M]) -> M:
        """Sign ``ask`` unless a rule refuses it; the new state is durable before the
        signed message is returned."""
        self._check_floor(ask.height, ask.step)
        last = self._state
        repeated = self._check_order(ask, last)
        if repeated is not None:
            return build(repeated)
        signature = self._key.sign(ask.purpose, self.chain_id, ask.message)
        state, lock_block = self._next_state(ask, last, signature)
        signed = build(signature)
        self._record(state, lock_block, signed, last)
        return signed

    def _check_order(self, ask: _Ask, last: SignedState | None) -> bytes | None:
        """(height, round, step) only goes up. The same (h, r, s) with the same bytes
        again: the stored signature (a re-send after a crash). Anything else at or below
        the last (h, r, s): refused."""
        if last is None:
            return None
        step = ask.step.name.lower()
        if ask.hrs == last.hrs:
            if ask.message == last.message:
                return last.signature
            raise DoubleSignRefused(
                f"already signed a different {step} at height {ask.height} round {ask.round}"
            )
        if ask.hrs < last.hrs:
            raise DoubleSignRefused(
                f"refusing to sign {step} at height {ask.height} round {ask.round}: "
                f"already signed at height {last.height} round {last.round} "
                f"step {Step(last.step).name.lower()}"
            )
        return None

    def _next_state(
        self, ask: _Ask, last: SignedState | None, signature: bytes
    ) -> tuple[SignedState, bytes]:
        """The state after signing ``ask``, and the locked block's bytes. The lock rules:
        a precommit of a block locks on it (its bytes kept if it is the lock we hold);
        any other message at the height of the lock keeps it; a new height has none."""
        polka = ask.polka
        if ask.lock:
            lock_height, lock_round, lock_hash = ask.height, ask.round, ask.lock
            lock_block = b""
            if last is not None and last.lock_height == ask.height and last.lock_hash == ask.lock:
                lock_block = self._lock_block
            if not lock_block:
                lock_block = self._block_bytes(ask.lock)
        elif last is not None and last.lock_height == ask.height:
            lock_height, lock_round, lock_hash = ask.height, last.lock_round, last.lock_hash
            polka = last.lock_polka
            lock_block = self._lock_block
        else:
            lock_height, lock_round, lock_hash = 0, -1, NIL
            lock_block = b""
        height, round_, step = ask.hrs
        state = SignedState(
            height, round_, step, ask.message, signature, lock_height, lock_round, lock_hash, polka
        )
        return state, lock_block

    def _record(
        self,
        state: SignedState,
        lock_block: bytes,
        signed: Proposal | Vote,
        last: SignedState | None,
    ) -> None:
        """Add ``signed`` to the height's message log (a new height starts it again, the
        oldest beyond ``MAX_MESSAGES`` are dropped), persist, then take the new state."""
        new_height = last is None or last.height != state.height
        key = message_key(*state.hrs)
        messages: dict[bytes, Proposal | Vote] = {} if new_height else dict(self._messages)
        messages[key] = signed
        dropped: list[bytes] = []
        while len(messages) > MAX_MESSAGES:
            oldest = next(iter(messages))
            dropped.append(oldest)
            del messages[oldest]
        self._persist(state, messages, lock_block, key, signed, new_height, dropped)
        # only now: the write above is durable
        self._state = state
        self._messages = messages
        self._lock_block = lock_block
        if new_height:
            self._stale_keys.clear()

    def _check_floor(self, height: int, step: Step) -> None:
        if self._floor_pending:
            raise DoubleSignRefused(
                f"refusing to sign {step.name.lower()} at height {height}: the signer state was "
                "reset and the node has not caught up yet"
            )
        committed = self.committed_height() if self.committed_height is not None else 0
        if height <= self._floor or height <= committed:
            raise DoubleSignRefused(
                f"refusing to sign {step.name.lower()} at height {height}: at or below "
                f"{'the committed head' if committed >= self._floor else 'the signer floor'} "
                f"{max(committed, self._floor)}"
            )

    def _block_bytes(self, block_hash: bytes) -> bytes:
        if self.block_source is None:
            return b""
        raw = self.block_source(block_hash)
        if raw is None:
            log.warning(
                "locking on block %s without its bytes: a restart could not propose it",
                block_hash.hex()[:16],
            )
            return b""
        return raw

    # --- storage --------------------------------------------------------------------------

    def _persist(
        self,
        state: SignedState,
        messages: dict[bytes, Proposal | Vote],
        lock_block: bytes,
        key: bytes,
        signed: Proposal | Vote,
        new_height: bool,
        dropped: list[bytes],
    ) -> None:
        store = self._store
        if store is None:
            return
        if isinstance(store, SignerStateFile):
            store.write(
                self._file_body(state, messages, lock_block, self._floor, self._floor_pending)
            )
            return
        batch = WriteBatch()
        if new_height:  # the log of our own messages starts again
            for old in (*self._stale_keys, *self._messages):
                batch.delete(old)
        for old in dropped:
            batch.delete(old)
        batch.put(key, encode(encode_signed(signed)))
        batch.put(STATE_KEY, encode(state_obj(self.public_key, state)))
        if lock_block:
            if lock_block is not self._lock_block:
                batch.put(BLOCK_KEY, lock_block)
        elif self._lock_block:
            batch.delete(BLOCK_KEY)
        store.write(batch, sync=True)

    def _file_body(
        self,
        state: SignedState | None,
        messages: dict[bytes, Proposal | Vote],
        lock_block: bytes,
        floor: int,
        floor_pending: bool,
    ) -> dict[str, Value]:
        return {
            "chain_id": self.chain_id,
            "validator": self.public_key,
            "floor": floor,
            "floor_pending": floor_pending,
            "state": None if state is None else state_obj(self.public_key, state),
            "messages": [encode_signed(m) for m in messages.values()],
            "lock_block": lock_block if state is not None and state.lock_height else b"",
        }

    def _load_file(self, file: SignerStateFile) -> None:
        raw_body = file.read()
        try:
            body = read(_FILE_BODY, raw_body, "signer")
            chain_id, validator = body["chain_id"], body["validator"]
            floor, floor_pending = body["floor"], body["floor_pending"]
            lock_block = body["lock_block"]
            state = None if body["state"] is None else decode_state(body["state"])
            messages = [decode_signed(m) for m in body["messages"]]
        except (DecodeError, ValidationError) as exc:
            raise SignerStateError(f"the signer state file {file.path} is damaged: {exc}") from None
        if validator != self.public_key:
            raise SignerStateError(
                f"the signer state file {file.path} belongs to another validator key "
                f"({validator.hex()[:16]}…); refusing to sign with it"
            )
        if chain_id != self.chain_id:
            raise SignerStateError(
                f"the signer state file {file.path} is for chain {chain_id!r}, "
                f"this node's is {self.chain_id!r}"
            )
        self._state = state
        self._floor, self._floor_pending = floor, floor_pending
        self._lock_block = lock_block if state is not None and state.lock_height else b""
        for message in messages:
            if state is not None and message.height == state.height:
                step = Step.PROPOSE if isinstance(message, Proposal) else _vote_step(message)
                self._messages[message_key(message.height, message.round, int(step))] = message

    def _load(self) -> SignedState | None:
        store = self._store
        assert store is not None and not isinstance(store, SignerStateFile)
        raw = store.get(STATE_KEY)
        if raw is None:
            return None
        try:
            m = decode(raw)
            state = decode_state(m)
            validator = m["validator"]
        except (DecodeError, ValidationError) as exc:
            raise SignerStateError(f"the stored signer state is corrupt: {exc}") from None
        if validator != self.public_key:
            raise SignerStateError(
                "the stored signer state belongs to another validator key "
                f"({validator.hex()[:16]}…); refusing to sign with it"
            )
        return state

    def _load_messages(self) -> None:
        store = self._store
        assert store is not None and not isinstance(store, SignerStateFile)
        height = self._state.height if self._state is not None else None
        for key, raw in store.iterate(MESSAGE_PREFIX):
            try:
                message = decode_signed(decode(raw))
            except (DecodeError, ValidationError) as exc:
                raise SignerStateError(f"a stored signed message is corrupt: {exc}") from None
            if message.height == height:
                self._messages[key] = message
            else:
                self._stale_keys.append(key)


def open_signer(
    key: PrivateKey,
    chain_id: str,
    file: SignerStateFile,
    store: KVStore,
    *,
    chain_height: int,
    reset: bool = False,
    committed_height: Callable[[], int] | None = None,
) -> Signer:
    """The validator's signer at node start, with its state from ``file``.

    * the file exists: use it (damaged, or another key's or chain's: refuse);
    * it does not, but ``store`` holds the state of a node from before the file
      (``keys.SIGNER``): move it into the file, then delete it from the store;
    * neither, and the chain store is new (``chain_height`` 0): a new validator;
    * neither, and the chain store has blocks: refuse — this key has signed
      before and its record is gone.

    ``reset`` (``cityledger node start --reset-signer-state``) replaces whatever
    is there (a damaged file is kept beside it as ``<file>.reset-<time>``) with
    a fresh state that signs nothing until the node has caught up, and then
    nothing at the height it caught up to plus one (:meth:`Signer.raise_floor`).
    """
    legacy = any(True for _ in store.iterate(K.SIGNER))
    if reset:
        return _reset_signer(key, chain_id, file, store, committed_height)
    exists = file.exists()
    signer = Signer(key, chain_id, file, committed_height=committed_height)  # no file: empty
    if exists:
        if legacy:
            forget_legacy(store)  # a migration that stopped before its last step
        return signer
    if legacy:
        _migrate(signer, Signer(key, chain_id, store), store, file)
        return signer
    if chain_height > 0:
        raise SignerStateError(
            f"the signer state file {file.path} is missing, but the chain store has "
            f"{chain_height} blocks: this validator has signed before, and without that record "
            "it could sign twice. Restore the file (from the backup of this home), or, if you "
            "are sure the key has not signed anywhere since, start once with "
            "--reset-signer-state"
        )
    signer.save()
    return signer


def _reset_signer(
    key: PrivateKey,
    chain_id: str,
    file: SignerStateFile,
    store: KVStore,
    committed_height: Callable[[], int] | None,
) -> Signer:
    """``--reset-signer-state``: the old file set aside, a fresh state that signs nothing
    until the node has caught up, and the chain store's old state forgotten."""
    if file.exists():
        aside = f"{file.path}.reset-{int(time.time())}"
        os.replace(file.path, aside)
        log.warning("signer state reset: the old file is kept as %s", aside)
    signer = Signer(key, chain_id, file, committed_height=committed_height)
    signer.reset()
    forget_legacy(store)
    log.warning(
        "signer state reset: this validator signs nothing until it has caught up with "
        "its peers, and nothing at the height it catches up to"
    )
    return signer


def _migrate(signer: Signer, old: Signer, store: KVStore, file: SignerStateFile) -> None:
    """Move the state ``old`` read from the chain store into ``signer``'s file, then
    delete it from the store."""
    signer.adopt(old)
    forget_legacy(store)
    log.info(
        "moved the signer state from the chain store to %s (last signed %s)",
        file.path,
        old.last_signed,
    )


def _vote_step(vote: Vote) -> Step:
    return Step.PREVOTE if vote.type == VoteType.PREVOTE else Step.PRECOMMIT
