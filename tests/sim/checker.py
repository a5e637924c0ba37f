"""What every simulated run must satisfy, and the records needed to check it.

* **agreement** — no two honest nodes commit different blocks at one height;
* **validity** — every block an honest node committed was proposed, and is valid
  for an honest node (well-formed, on top of the agreed previous block, carrying a
  certificate that verifies);
* **no honest double-sign** — no honest validator key ever signed two different
  messages for one (height, round, step), across crashes and restarts included,
  and no evidence ever names an honest validator;
* **liveness** — after GST every honest node commits at least K more heights
  within a bound on simulated time;
* **certificates** — every certificate an honest node committed with verifies
  against the validator set for its height and block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.crypto import PrivateKey
from ledger.storage import KVStore
from ledger.votes import Proposal, Vote, VoteType
from node.consensus.evidence import Evidence
from node.consensus.signer import Signer

if TYPE_CHECKING:
    from tests.sim.world import World


@dataclass
class Recorder:
    """Everything the checker needs that the nodes themselves do not keep."""

    # key -> (height, round, step) -> the bytes signed there
    signed: dict[bytes, dict[tuple[int, int, int], bytes]] = field(default_factory=dict)
    double_signs: list[tuple[bytes, tuple[int, int, int]]] = field(default_factory=list)
    evidence: list[tuple[str, Evidence]] = field(default_factory=list)
    commit_times: dict[int, list[int]] = field(default_factory=dict)  # node id -> times
    synced: int = 0

    def on_signed(self, key: bytes, hrs: tuple[int, int, int], message: bytes) -> None:
        by_hrs = self.signed.setdefault(key, {})
        earlier = by_hrs.get(hrs)
        if earlier is None:
            by_hrs[hrs] = message
        elif earlier != message:
            self.double_signs.append((key, hrs))


class RecordingSigner(Signer):
    """The real signer, reporting every signature it hands out to the recorder."""

    def __init__(
        self, key: PrivateKey, chain_id: str, store: KVStore | None, recorder: Recorder
    ) -> None:
        super().__init__(key, chain_id, store)
        self.recorder = recorder

    def sign_proposal(
        self, height: int, round_: int, block_hash: bytes, valid_round: int
    ) -> Proposal:
        p = super().sign_proposal(height, round_, block_hash, valid_round)
        self.recorder.on_signed(
            self.public_key,
            (height, round_, 1),
            Proposal.sign_bytes(height, round_, block_hash, valid_round),
        )
        return p

    def sign_vote(
        self,
        vote_type: VoteType,
        height: int,
        round_: int,
        block_hash: bytes,
        justification: Sequence[Vote] = (),
    ) -> Vote:
        vote = super().sign_vote(vote_type, height, round_, block_hash, justification)
        step = 2 if vote_type == VoteType.PREVOTE else 3
        self.recorder.on_signed(
            self.public_key,
            (height, round_, step),
            Vote.sign_bytes(vote_type, height, round_, block_hash),
        )
        return vote


def check(world: World) -> list[str]:
    """Every invariant violated by this run, as readable sentences."""
    violations: list[str] = []
    honest = [world.nodes[i] for i in world.honest_ids]
    blocks = world.blocks
    # agreement
    longest = max((len(n.chain) for n in honest), default=0)
    for h in range(1, longest + 1):
        seen: dict[bytes, str] = {}
        for node in honest:
            if len(node.chain) >= h:
                seen.setdefault(node.chain[h - 1][0], node.name)
        if len(seen) > 1:
            listed = ", ".join(f"{who} committed {b.hex()[:8]}" for b, who in seen.items())
            violations.append(f"agreement: height {h}: {listed}")
    # validity and certificates
    for node in honest:
        for h, (block_hash, cert) in enumerate(node.chain, start=1):
            block = blocks.blocks.get(block_hash)
            if block is None or (h, block_hash) not in blocks.proposed:
                violations.append(f"validity: {node.name} committed unproposed block at h{h}")
            elif not blocks.check(block_hash, h, node.chain):
                violations.append(f"validity: {node.name} committed an invalid block at h{h}")
            if not blocks.cert_ok(cert, h, block_hash):
                violations.append(f"certificate: {node.name}'s certificate for h{h} is invalid")
    # no honest double-sign
    honest_keys = world.honest_keys
    for key, (h, r, s) in world.recorder.double_signs:
        if key in honest_keys:
            violations.append(
                f"double-sign: honest {world.key_names[key]} signed twice at h{h} r{r} step {s}"
            )
    for who, ev in world.recorder.evidence:
        if ev.offender in honest_keys:
            violations.append(
                f"evidence: {who} holds {ev.kind} evidence against honest "
                f"{world.key_names[ev.offender]} at h{ev.height}"
            )
    # liveness
    cfg = world.config
    for node in honest:
        start = world.height_at_gst.get(node.id, 0)
        times = world.recorder.commit_times.get(node.id, [])
        target = start + cfg.liveness_heights
        if len(times) < target:
            violations.append(
                f"liveness: {node.name} was at height {start} at GST and committed only "
                f"{len(times) - start} more within {cfg.liveness_bound}ms (needs "
                f"{cfg.liveness_heights}); {node.describe()}"
            )
        elif times[target - 1] > cfg.net.gst + cfg.liveness_bound:
            violations.append(f"liveness: {node.name} reached height {target} too late")
    return violations
