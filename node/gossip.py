"""Gossip routing: what a node does with each message a peer sends, and what it passes on.

* Dedup by content: a frame already handled (a relayed copy, a re-send) is dropped
  before it is decoded (``PeerManager``'s ``seen``); a frame is remembered for
  ``SEEN_FOR_S`` seconds, and at most the newest ``MAX_SEEN`` (a copy relayed by another
  peer comes within a second, our own re-sends each second; one that comes after it was
  forgotten is decoded and handled once more, and the core takes nothing twice).
* Transactions: admitted ones are batched and sent every ``gossip_interval_ms``. A
  validator's batch is not relayed (validators are a full mesh); an observer's goes on
  to every other peer.
* Consensus messages: handled only once consensus has started, relayed once to
  every peer but the sender and the author when the core took them (never one it
  refused: stale, beyond its window, or without room); one the core set aside (its
  proposal is not here yet) or had no room for is not marked seen, so its next copy is
  handled again. An invalid one costs the peer its score.
* Evidence: gossiped once, verified before it is pooled and relayed.
* Head statements (ledger/head.py): kept in the node's :class:`HeadBook` when new and
  valid, and relayed only to peers that are not validators (validators are a full mesh
  and each has its own from the signer); a forged one costs the peer its score.
* Announced block bodies (node/speculation.py): sent by a proposer to each validator
  right after its latest admitted transactions, never relayed; the driver takes one
  only from the link of the round's proposer.
* Status and sync messages go to the syncer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from ledger.errors import StorageError
from ledger.evidence import Evidence, describe_evidence
from ledger.genesis import Genesis
from ledger.tx import Transaction
from ledger.votes import Proposal, Vote
from node.admission import Admission
from node.api.metrics import Metrics
from node.chain import ChainStore
from node.consensus.effects import Rejected
from node.consensus.evidence import MAX_EVIDENCE_AGE, EvidenceError, EvidencePool
from node.driver import ConsensusDriver
from node.head_book import HeadBook, Taken
from node.peers import MINOR, Peer, PeerManager
from node.sync import Syncer
from node.tx_resend import StalledResend
from node.wire import (
    AnnounceMsg,
    EvidenceMsg,
    HeadMsg,
    ProposalMsg,
    SnapRequest,
    SnapResponse,
    StatusMsg,
    SyncRequest,
    SyncResponse,
    TxBatch,
    VoteMsg,
    WireMessage,
    encode_message,
)

log = logging.getLogger("cityledger.node")
MAX_SEEN = 20_000  # frames remembered for dedup, at most
SEEN_FOR_S = 60.0  # and for this long: at 200 tx/s ~1,400 frames, not 20,000 (~3 MB)
TX_BATCH = 2000  # transactions per gossiped batch at most
ANNOUNCE_YIELDS = 8  # turns of the event loop a proposer gives its links to send a body
# Gossiped evidence is kept from heights up to this far above the node's next height (a
# peer a little ahead); further ahead, the node is catching up and will sync the block
# that commits it.
EVIDENCE_FUTURE_HEIGHTS = 4


class GossipHost(Protocol):
    """What gossip needs from the node: the links, where transactions, consensus and sync
    messages go, and where a failure of its own store is reported."""

    peers: PeerManager
    driver: ConsensusDriver
    syncer: Syncer
    consensus_started: bool

    admission: Admission
    heads: HeadBook

    def store_failed(self, message: str) -> None: ...

    def snapshot_request(self, peer: Peer, msg: SnapRequest) -> bool:
        """Answer a request for a snapshot part; False: refused (too many too fast)."""
        ...


class Gossip:
    """Routes peers' messages for one node and sends its own (implements the driver's
    :class:`node.driver.ConsensusNetwork`)."""

    def __init__(
        self,
        host: GossipHost,
        genesis: Genesis,
        chain: ChainStore,
        evidence_pool: EvidencePool,
        metrics: Metrics,
    ) -> None:
        self.host = host
        self.metrics = metrics
        self.genesis = genesis
        self.chain = chain
        self.evidence_pool = evidence_pool
        self.outbox: list[Transaction] = []  # admitted from the API: gossip to every peer
        self.relay: dict[bytes, list[Transaction]] = {}  # from an observer: to all but it
        self.status_from: set[bytes] = set()  # peers that told us their height
        # relayed consensus messages: their hash -> when first seen (clock), oldest first
        self._seen: OrderedDict[int, float] = OrderedDict()
        self.clock: Callable[[], float] = time.monotonic
        self.stalled = StalledResend()

    # --- dedup --------------------------------------------------------------------------

    @property
    def seen_count(self) -> int:
        """Frames remembered for dedup (at most MAX_SEEN)."""
        return len(self._seen)

    def frame_seen(self, frame: bytes) -> bool:
        """Whether a received frame was already handled (checked before decoding it)."""
        return hash(frame) in self._seen

    def mark_seen(self, frame: bytes) -> bool:
        """True the first time ``frame`` is seen (gossip dedup by content)."""
        digest = hash(frame)
        seen = self._seen
        if digest in seen:
            return False
        now = self.clock()
        seen[digest] = now
        while len(seen) > MAX_SEEN or next(iter(seen.values())) < now - SEEN_FOR_S:
            seen.popitem(last=False)
        return True

    # --- sending ------------------------------------------------------------------------

    def broadcast_consensus(self, msg: ProposalMsg | VoteMsg) -> None:
        """Our own proposal or vote (or a re-send of it) to every peer."""
        self.mark_seen(encode_message(msg))
        self.host.peers.broadcast(msg)

    async def announce(self, msg: AnnounceMsg) -> None:
        """Our block's body (node/speculation.py) to every validator of its height, right
        after the transactions admitted since the last batch (a link delivers in order,
        so each validator has been sent every transaction the body names); returns once
        the links' writers have taken it (at most ``ANNOUNCE_YIELDS`` turns of the event
        loop): the proposer executes the block next, without yielding, and a frame still
        queued would leave with the proposal."""
        self._send_outbox()
        validators = self.chain.validators_at(msg.height)
        links = [p for key, p in self.host.peers.peers.items() if key in validators]
        frame = encode_message(msg)
        for peer in links:
            peer.send(frame)
        for _ in range(ANNOUNCE_YIELDS):
            if all(peer.queue.empty() for peer in links):
                return
            await asyncio.sleep(0)

    def evidence_found(self, evidence: Evidence) -> None:
        """The core found an equivocation (and pooled it): every peer hears of it once."""
        msg = EvidenceMsg(evidence)
        self.mark_seen(encode_message(msg))
        self.host.peers.broadcast(msg)

    def head_signed(self, msg: HeadMsg) -> None:
        """Our own head statement: kept, and sent to every peer."""
        self.host.heads.add(msg.statement)
        self.host.peers.broadcast(msg)

    def send_soon(self, txs: list[Transaction]) -> None:
        """``txs`` (admitted from the API) go to every peer with the next batch."""
        self.outbox += txs

    def relay_soon(self, source: bytes, txs: list[Transaction]) -> None:
        """``txs`` (an observer's, admitted) go to every peer but ``source`` with the
        next batch."""
        self.relay.setdefault(source, []).extend(txs)

    async def gossip_txs(self, interval_s: float) -> None:
        """Every ``interval_s``: the admitted transactions to every peer, an observer's
        to every peer but it, in batches of at most ``TX_BATCH``; and, when the network
        stalled with some of them here, what this node would propose, again."""
        while True:
            await asyncio.sleep(interval_s)
            self.resend_if_stalled(time.monotonic())
            self._send_outbox()
            if self.relay:
                relay, self.relay = self.relay, {}
                for source, txs in relay.items():
                    self._send_txs(txs, source)

    def resend_if_stalled(self, now: float) -> None:
        """Ready transactions here, no proposal for the current round, and a head that
        has not moved for a while: the ones this node would propose go to every peer
        again (node/tx_resend.py). A proposal on its way means a busy network, not a
        stalled one: nothing is sent."""
        if not self.host.consensus_started:
            return  # catching up: the head moves by sync, and the mempool waits
        mempool = self.host.admission.mempool
        height = self.chain.head().height
        stalled = mempool.ready > 0 and self.host.driver.awaiting_proposal()
        if not self.stalled.due(height, stalled, now):
            return
        txs = mempool.reap(TX_BATCH, self.genesis.consensus.max_block_bytes)
        log.info(
            "height %d has had no proposal for %.0f s with %d transactions ready here: "
            "sent %d of them to every peer again",
            height + 1, now - self.stalled.since, mempool.ready, len(txs),
        )  # fmt: skip
        self._send_txs(txs, None)

    def _send_outbox(self) -> None:
        """What was admitted from the API since the last batch, to every peer now."""
        if self.outbox:
            batch, self.outbox = self.outbox, []
            self._send_txs(batch, None)

    def _send_txs(self, txs: list[Transaction], exclude: bytes | None) -> None:
        for i in range(0, len(txs), TX_BATCH):
            self.host.peers.broadcast(TxBatch(tuple(txs[i : i + TX_BATCH])), exclude=exclude)

    # --- receiving ----------------------------------------------------------------------

    async def on_connect(self, peer: Peer) -> None:
        """A new link (``PeerManager``'s ``on_connect``): our height and this height's
        own messages."""
        links = self.host.peers
        links.send(peer, StatusMsg(self.chain.head().height))
        self.metrics.set_peers(len(links.peers))
        for msg in self.host.driver.own_messages:
            links.send(peer, msg)

    async def on_message(self, peer: Peer, msg: WireMessage) -> None:
        """A message from ``peer`` (``PeerManager``'s ``on_message``)."""
        try:
            await self._handle(peer, msg)
        except StorageError as exc:  # our own disk, never the peer's fault
            self.host.store_failed(f"handling a {type(msg).__name__} from {peer.name}: {exc}")

    async def _handle(self, peer: Peer, msg: WireMessage) -> None:
        if isinstance(msg, TxBatch):
            await self._txs(peer, msg)
        elif isinstance(msg, ProposalMsg | VoteMsg):
            self._consensus(peer, msg)
        elif isinstance(msg, EvidenceMsg):
            self._evidence(peer, msg)
        elif isinstance(msg, AnnounceMsg):
            if self.host.consensus_started:  # never relayed: only its sender's own counts
                self.host.driver.on_announce(peer.key, msg)
        elif isinstance(msg, HeadMsg):
            self._head(peer, msg)
        elif isinstance(msg, StatusMsg):
            peer.height = max(peer.height, msg.height)
            self.status_from.add(peer.key)
            self.host.syncer.behind(msg.height, backed=False)  # a claim: see Syncer.target
        elif isinstance(msg, SyncRequest):
            self._sync_request(peer, msg)
        elif isinstance(msg, SyncResponse):
            await self._sync_response(peer, msg)
        elif isinstance(msg, SnapRequest):
            if not self.host.snapshot_request(peer, msg):
                self.host.peers.penalise(
                    peer, "asked for snapshot parts faster than it is served", MINOR, close=False
                )
        elif isinstance(msg, SnapResponse):  # only a joining node asks (node/statesync.py)
            self.host.peers.penalise(
                peer, "sent a snapshot part nobody asked for", MINOR, close=False
            )

    async def _txs(self, peer: Peer, msg: TxBatch) -> None:
        # Validators are a full mesh: a validator's batch reached every other validator
        # from it, so relaying it would only make each of them decode it again. What an
        # observer sends (it may be linked to us alone) goes on to everyone else.
        relay = None
        if peer.key not in self.chain.validators_at(self.chain.head().height + 1):
            relay = functools.partial(self.relay_soon, peer.key)
        results = await self.host.admission.admit(list(msg.txs), relay)
        if any(r is not None and r.code == "bad_signature" for r in results):
            self.host.peers.penalise(peer, "relayed a transaction with a bad signature")

    def _consensus(self, peer: Peer, msg: ProposalMsg | VoteMsg) -> None:
        if not self.host.consensus_started:
            # Catching up first, or an observer: not marked as seen, so the copies
            # peers re-send each second are handled once consensus has started.
            return
        frame = encode_message(msg)  # the received bytes (msg.raw): nothing is re-encoded
        if not self.mark_seen(frame):
            return
        driver = self.host.driver
        if isinstance(msg, ProposalMsg):
            effects = driver.on_proposal(msg)
            message: Proposal | Vote = msg.proposal
            origin = msg.proposal.proposer
        else:
            effects = driver.on_vote(msg.vote)
            message, origin = msg.vote, msg.vote.validator
        if not driver.core.holds(message):  # set aside (e.g. its proposal is not here)
            self._seen.pop(hash(frame), None)  # not seen: its next copy is taken again
        errors = [e.error for e in effects if isinstance(e, Rejected) and e.message == message]
        if any(error.misbehaviour for error in errors):
            self.host.peers.penalise(peer, "sent an invalid consensus message")
            return
        if errors:
            # Refused without blame (stale, beyond the window, no room in the buffer): not
            # relayed. A stale message's signature is never checked, so relaying it would
            # let any peer have every node pass on forged frames of its making.
            return
        for other_key, other in self.host.peers.peers.items():
            if other_key != peer.key and other_key != origin:
                other.send(frame)

    def _head(self, peer: Peer, msg: HeadMsg) -> None:
        taken = self.host.heads.add(msg.statement)
        if taken is Taken.FORGED:
            self.host.peers.penalise(peer, "sent a head statement that does not check out")
        elif taken is Taken.NEW:
            validators = self.chain.validators_at(self.chain.head().height + 1)
            for key, other in self.host.peers.peers.items():
                if key != peer.key and key not in validators:
                    self.host.peers.send(other, msg)

    def _sync_request(self, peer: Peer, msg: SyncRequest) -> None:
        if not self.host.syncer.serve(peer, msg):  # one at a time per peer
            self.host.peers.penalise(
                peer, "asked for blocks before its last request was answered", MINOR, close=False
            )

    async def _sync_response(self, peer: Peer, msg: SyncResponse) -> None:
        peers, syncer = self.host.peers, self.host.syncer
        if not syncer.solicited(peer):
            peers.penalise(peer, "sent blocks nobody asked for", MINOR, close=False)
        elif not await syncer.apply(peer, msg):
            peers.penalise(peer, "served a block that does not check out")

    def _evidence(self, peer: Peer, msg: EvidenceMsg) -> None:
        """A peer's evidence: the cheap checks first (seen, height window, known or
        committed offence, the offender's quota in the pool), then both signatures; a
        piece that does not verify costs the peer its score, a new one is pooled and
        relayed to every other peer."""
        evidence = msg.evidence
        if not self.mark_seen(encode_message(msg)):
            return
        next_height = self.chain.head().height + 1
        if not (
            next_height - MAX_EVIDENCE_AGE
            <= evidence.height
            <= next_height + EVIDENCE_FUTURE_HEIGHTS
        ):
            return  # too old to commit, or from heights this node has not reached
        if not self.evidence_pool.wants(evidence) or self.chain.evidence_committed(evidence):
            return
        try:
            evidence.verify(self.genesis.chain_id, self.chain.validators_at(evidence.height))
        except EvidenceError as exc:
            self.host.peers.penalise(peer, f"sent evidence that does not verify: {exc}")
            return
        if self.evidence_pool.add(evidence):
            log.warning("equivocation evidence from %s: %s", peer.name, describe_evidence(evidence))
            self.host.peers.broadcast(msg, exclude=peer.key)
            if self.host.consensus_started:
                self.host.driver.txs_arrived()  # something to commit: an idle height starts
