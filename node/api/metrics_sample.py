"""What ``/metrics`` samples at scrape time, from the node's own records.

- ``cityledger_last_block_age_seconds``: wall clock minus the latest block's time (an
  alert on it catches a halted chain even when every process is up);
- ``cityledger_peer_connected{validator}``: 1 while this node has a link to that
  validator, 0 while not (the other validators of the genesis set);
- ``cityledger_validator_missed_votes_total{validator}``: committed heights whose stored
  commit certificate lacks that validator's signature, counted once per height as the
  chain grows (at most :data:`BACKFILL_HEIGHTS` back on the first scrape, so a scrape of
  a long chain stays cheap).

A certificate holds the precommits its block's proposer had gathered — more than 2/3 of
the power, not necessarily everyone's — so a validator that is up but slow is sometimes
"missed" too; one that is down is missed at every height.
"""

from __future__ import annotations

from node.api.metrics import Metrics
from node.handle import NodeHandle

BACKFILL_HEIGHTS = 1000


def sample(metrics: Metrics, node: NodeHandle, now_ms: int) -> None:
    head = node.chain.head()
    metrics.last_block_age.set(max(0.0, (now_ms - head.time_ms) / 1000))
    _sample_peers(metrics, node)
    _count_missed_votes(metrics, node, head.height)


def _sample_peers(metrics: Metrics, node: NodeHandle) -> None:
    peers = node.status().get("peers")
    if not isinstance(peers, list):
        return
    connected = {p.get("key") for p in peers if isinstance(p, dict)}
    for v in node.genesis.validators.validators:
        if v.public_key != node.public_key:
            metrics.peer_connected.labels(v.name).set(1 if v.public_key in connected else 0)


def _count_missed_votes(metrics: Metrics, node: NodeHandle, head_height: int) -> None:
    start = max(metrics.missed_counted_to + 1, head_height - BACKFILL_HEIGHTS + 1, 1)
    validators = node.genesis.validators.validators
    for v in validators:
        metrics.missed_votes.labels(v.name)  # every validator's series exists, from 0
    for height in range(start, head_height + 1):
        cert = node.chain.certificate(height)
        if cert is None:
            continue  # not stored (yet): counted when it is, never twice
        signed = {public_key for public_key, _ in cert.signatures}
        for v in validators:
            if v.public_key not in signed:
                metrics.missed_votes.labels(v.name).inc()
        metrics.missed_counted_to = height
