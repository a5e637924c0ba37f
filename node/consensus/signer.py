"""Double-sign protection: a signer that never signs two different things for one
(height, round, step), across crashes and restarts.

Before a signature leaves :meth:`Signer.sign_vote` / :meth:`Signer.sign_proposal`,
the signer writes its new *last signed* state — (height, round, step), the exact
signed bytes and the signature — to its store with ``sync=True`` under
``keys.SIGNER``. Then, for any later request at (h, r, s):

* (h, r, s) above the last one: sign, persist, return;
* (h, r, s) equal to the last one and the same bytes: return the stored signature
  (a node that crashed between "signed" and "sent" re-sends exactly the same
  message, never a second, different one);
* anything else — another message at the same (h, r, s), or any earlier
  (h, r, s): :class:`DoubleSignRefused`. The core then simply does not send.

The signer also remembers the last non-nil precommit it signed, with the 2f+1
prevotes that justified it (the paper's lockedValue/lockedRound are set exactly
when such a precommit is signed, lines 38-40). A restarted node therefore re-locks
where it was locked — forgetting the lock would let one crash plus f byzantine
validators fork — and can show the polka behind its lock to the others, who may
need it to accept the locked value again (line 28) and so to make progress.

Finally it keeps every message it signed at its current height, each under its own
key, written in the same synced batch (a small write-ahead log of our own messages;
entries of earlier heights are deleted as the next height begins). The restarted
core puts them back into its log so gossip delivers them: the paper's liveness
assumes every message of a correct process eventually arrives, and a message that
only its crashed author ever held otherwise never does — a lagging round could then
wait forever for 2f+1 votes with no timer running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ledger.crypto import PrivateKey, Purpose
from ledger.encoding import decode, encode, expect_bytes, expect_int, expect_list, expect_map
from ledger.errors import DecodeError, ValidationError
from ledger.storage import KVStore, WriteBatch
from ledger.storage import keys as K
from ledger.votes import NIL, Proposal, Vote, VoteType
from node.consensus.errors import DoubleSignRefused, SignerStateError
from node.consensus.types import Step
from node.faults import crash_point

STATE_KEY = K.SIGNER + b"last"
MESSAGE_PREFIX = K.SIGNER + b"msg"  # + height (8) + round (4) + step (1) -> message
MAX_POLKA = 256
MAX_MESSAGES = 3 * 256  # per height: the newest 256 rounds' worth
M = TypeVar("M", Proposal, Vote)

_FIELDS = (
    "validator",
    "height",
    "round",
    "step",
    "message",
    "signature",
    "lock_height",
    "lock_round",
    "lock_hash",
    "lock_polka",
)


@dataclass(frozen=True, slots=True)
class Lock:
    """The last non-nil precommit signed at a height and the prevotes behind it."""

    round: int
    block_hash: bytes
    polka: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class SignedState:
    """What the signer last signed, and the lock it implies."""

    height: int
    round: int
    step: int  # Step.PROPOSE / PREVOTE / PRECOMMIT
    message: bytes
    signature: bytes
    lock_height: int = 0  # 0: no lock
    lock_round: int = -1
    lock_hash: bytes = NIL
    lock_polka: tuple[Vote, ...] = ()

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


def message_key(height: int, round_: int, step: int) -> bytes:
    return MESSAGE_PREFIX + K.height_bytes(height) + round_.to_bytes(4, "big") + bytes([step])


class Signer:
    """Signs consensus messages for one validator key on one chain.

    ``store=None`` keeps the state in memory only (tests, observers); a real
    validator passes its node's store so the state survives restarts.
    """

    def __init__(self, key: PrivateKey, chain_id: str, store: KVStore | None = None) -> None:
        self._key = key
        self.chain_id = chain_id
        self.public_key = key.public_key
        self._store = store
        self._state: SignedState | None = None
        # our own signed messages of the current height, by storage key (oldest first)
        self._messages: dict[bytes, Proposal | Vote] = {}
        self._stale_keys: list[bytes] = []  # stored messages of earlier heights
        if store is not None:
            self._state = self._load()
            self._load_messages()

    # --- what the core asks ---------------------------------------------------------------

    def sign_proposal(
        self, height: int, round_: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        message = Proposal.sign_bytes(height, round_, block_hash, valid_round)

        def build(signature: bytes) -> Proposal:
            return Proposal(height, round_, block_hash, valid_round, self.public_key, signature)

        return self._sign(height, round_, Step.PROPOSE, Purpose.PROPOSAL, message, NIL, (), build)

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

        return self._sign(height, round_, step, Purpose.VOTE, message, lock, polka, build)

    @property
    def last_signed(self) -> tuple[int, int, int] | None:
        """(height, round, step) of the last signature, or None if never signed."""
        return self._state.hrs if self._state else None

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

    def signed_messages(self, height: int) -> tuple[Proposal | Vote, ...]:
        """Everything signed at ``height`` (if it is the last height signed at)."""
        state = self._state
        if state is None or state.height != height:
            return ()
        return tuple(self._messages.values())

    # --- the rule -------------------------------------------------------------------------

    def _sign(
        self,
        height: int,
        round_: int,
        step: Step,
        purpose: Purpose,
        message: bytes,
        lock: bytes,
        polka: tuple[Vote, ...],
        build: Callable[[bytes], M],
    ) -> M:
        hrs = (height, round_, int(step))
        last: SignedState | None = self._state
        if last is not None:
            if hrs == last.hrs:
                if message == last.message:
                    return build(last.signature)
                raise DoubleSignRefused(
                    f"already signed a different {step.name.lower()} at height {height} "
                    f"round {round_}"
                )
            if hrs < last.hrs:
                raise DoubleSignRefused(
                    f"refusing to sign {step.name.lower()} at height {height} round {round_}: "
                    f"already signed at height {last.height} round {last.round} "
                    f"step {Step(last.step).name.lower()}"
                )
        signature = self._key.sign(purpose, self.chain_id, message)
        if lock:
            lock_height, lock_round, lock_hash = height, round_, lock
        elif last is not None and last.lock_height == height:
            lock_height, lock_round, lock_hash = height, last.lock_round, last.lock_hash
            polka = last.lock_polka
        else:
            lock_height, lock_round, lock_hash = 0, -1, NIL
        state = SignedState(
            height, round_, int(step), message, signature, lock_height, lock_round, lock_hash, polka
        )
        signed = build(signature)
        new_height = last is None or last.height != height
        self._persist(state, message_key(*hrs), signed, new_height)
        crash_point("sign.after_persist")  # fault suite: signed and durable, never sent
        self._state = state  # only now: the write above is durable
        if new_height:
            self._messages.clear()
            self._stale_keys.clear()
        self._messages[message_key(*hrs)] = signed
        while len(self._messages) > MAX_MESSAGES:
            del self._messages[next(iter(self._messages))]
        return signed

    # --- storage --------------------------------------------------------------------------

    def _persist(
        self, state: SignedState, key: bytes, signed: Proposal | Vote, new_height: bool
    ) -> None:
        if self._store is None:
            return
        batch = WriteBatch()
        if new_height:  # the log of our own messages starts again
            for old in (*self._stale_keys, *self._messages):
                batch.delete(old)
        elif len(self._messages) >= MAX_MESSAGES:
            batch.delete(next(iter(self._messages)))
        kind = "proposal" if isinstance(signed, Proposal) else "vote"
        batch.put(key, encode({kind: signed.to_obj()}))
        batch.put(
            STATE_KEY,
            encode(
                {
                    "validator": self.public_key,
                    "height": state.height,
                    "round": state.round,
                    "step": state.step,
                    "message": state.message,
                    "signature": state.signature,
                    "lock_height": state.lock_height,
                    "lock_round": state.lock_round,
                    "lock_hash": state.lock_hash,
                    "lock_polka": [v.to_obj() for v in state.lock_polka],
                }
            ),
        )
        self._store.write(batch, sync=True)

    def _load(self) -> SignedState | None:
        assert self._store is not None
        raw = self._store.get(STATE_KEY)
        if raw is None:
            return None
        try:
            m = expect_map(decode(raw), "signer state", _FIELDS)
            validator = expect_bytes(m["validator"], "signer.validator", size=32)
            state = SignedState(
                height=expect_int(m["height"], "signer.height", lo=1, hi=2**63 - 1),
                round=expect_int(m["round"], "signer.round", hi=2**31),
                step=expect_int(m["step"], "signer.step", lo=1, hi=3),
                message=expect_bytes(m["message"], "signer.message", max_size=1024),
                signature=expect_bytes(m["signature"], "signer.signature", size=64),
                lock_height=expect_int(m["lock_height"], "signer.lock_height", hi=2**63 - 1),
                lock_round=expect_int(m["lock_round"], "signer.lock_round", lo=-1, hi=2**31),
                lock_hash=expect_bytes(m["lock_hash"], "signer.lock_hash", max_size=32),
                lock_polka=tuple(
                    Vote.from_obj(v)
                    for v in expect_list(m["lock_polka"], "signer.lock_polka", max_len=MAX_POLKA)
                ),
            )
        except (DecodeError, ValidationError) as exc:
            raise SignerStateError(f"the stored signer state is corrupt: {exc}") from None
        if validator != self.public_key:
            raise SignerStateError(
                "the stored signer state belongs to another validator key "
                f"({validator.hex()[:16]}…); refusing to sign with it"
            )
        return state

    def _load_messages(self) -> None:
        assert self._store is not None
        height = self._state.height if self._state is not None else None
        for key, raw in self._store.iterate(MESSAGE_PREFIX):
            try:
                message = _decode_signed(decode(raw))
            except (DecodeError, ValidationError) as exc:
                raise SignerStateError(f"a stored signed message is corrupt: {exc}") from None
            if message.height == height:
                self._messages[key] = message
            else:
                self._stale_keys.append(key)


def _decode_signed(item: object) -> Proposal | Vote:
    if isinstance(item, dict) and set(item) == {"proposal"}:
        return Proposal.from_obj(item["proposal"])
    if isinstance(item, dict) and set(item) == {"vote"}:
        return Vote.from_obj(item["vote"])
    raise DecodeError("signed message: expected {'proposal': ...} or {'vote': ...}")
