"""A silent observer peer that records every signed proposal and vote it hears.

Each node's ``[p2p] observers`` lists the witness key, so the witness can hold an
authenticated link to every validator without being one. Validators broadcast
their own messages to every peer and relay everyone else's, so the witness sees
(almost) every signed consensus message, from both sides of any partition — it
connects directly, never through the fault relay or the namespaces' blackhole
routes. It never sends anything.

A validator *equivocates* when it signs two different messages for the same
(height, round, step). The witness keeps, per (validator, height, round, step),
the distinct signed payloads with a valid signature, so the check is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from dataclasses import dataclass

from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.votes import Proposal, Vote
from node.config import P2PConfig
from node.peers import Peer, PeerManager
from node.tls import LinkTLS
from node.wire import ProposalMsg, VoteMsg, WireMessage

WITNESS_KEY = PrivateKey.from_label("cityledger-e2e/witness")
INTRUDER_KEY = PrivateKey.from_label("cityledger-e2e/intruder")  # hostile observer (frames)
STEP_NAMES = {0: "proposal", 1: "prevote", 2: "precommit"}


@dataclass(frozen=True, slots=True)
class Equivocation:
    validator: bytes
    height: int
    round: int
    step: str
    variants: int

    def __str__(self) -> str:
        return (
            f"{self.validator.hex()[:12]}… signed {self.variants} different {self.step}s "
            f"at height {self.height} round {self.round}"
        )


class Witness:
    """Dials every validator as an observer and records signed consensus messages."""

    def __init__(
        self,
        chain_id: str,
        names: dict[bytes, str],
        addresses: list[str],
        *,
        genesis_hash: bytes,
        tls: bool = True,
    ) -> None:
        """``tls``: whether the nodes run TLS peer links (``[p2p] tls``)."""
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.tls = LinkTLS.ephemeral(WITNESS_KEY, names) if tls else None
        self.names = names
        self.addresses = addresses
        # (validator, height, round, step) -> distinct signed payload digests
        self.seen: dict[tuple[bytes, int, int, int], set[bytes]] = defaultdict(set)
        self.messages = 0
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="witness")
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        config = P2PConfig(reconnect_min_ms=100, reconnect_max_ms=1000)
        manager = PeerManager(
            WITNESS_KEY,
            self.chain_id,
            self.names,
            config,
            self._on_message,
            _nothing,
            tls=self.tls,
            genesis_hash=self.genesis_hash,
        )
        tasks = [asyncio.create_task(manager.dial_forever(a)) for a in self.addresses]
        self._ready.set()
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await manager.close()

    async def _on_message(self, peer: Peer, msg: WireMessage) -> None:
        del peer
        if isinstance(msg, VoteMsg):
            self.record(msg.vote)
        elif isinstance(msg, ProposalMsg):
            self.record(msg.proposal)

    def record(self, message: Proposal | Vote) -> None:
        if isinstance(message, Vote):
            signer, step = message.validator, int(message.type)
            payload = Vote.sign_bytes(
                message.type, message.height, message.round, message.block_hash
            )
        else:
            signer, step = message.proposer, 0
            payload = Proposal.sign_bytes(
                message.height, message.round, message.block_hash, message.valid_round
            )
        key = (signer, message.height, message.round, step)
        with self._lock:
            self.messages += 1
            if payload in self.seen.get(key, ()):
                return
        try:
            message.verify_signature(self.chain_id)
        except LedgerError:
            with self._lock:
                self.bad_signatures += 1
            return
        with self._lock:
            self.seen[key].add(payload)

    def equivocations(self) -> list[Equivocation]:
        with self._lock:
            return [
                Equivocation(v, h, r, STEP_NAMES[s], len(variants))
                for (v, h, r, s), variants in self.seen.items()
                if len(variants) > 1
            ]

    def close(self) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


async def _nothing(peer: Peer) -> None:
    del peer
