"""The invariants every fault scenario ends with, written once.

1. **No fork** — every node that has height h has the identical block hash at h, and
   every certificate it serves verifies against the validator set in force at h: the
   genesis set, or the set a certified change put in force (the history a node serves
   at ``/v1/validators``, each change checked from genesis by the set before it).
2. **Nothing lost** — every transaction the load saw acknowledged as committed is
   in the chain exactly once (no transaction hash appears twice anywhere), and
   every node answers its receipt with block, results and log inclusion proofs
   that verify against a certified header whose hash is the agreed one.
3. **No honest double-sign** — no honest validator signed two different messages for
   one (height, round, step): checked on what the witness observer recorded, on
   every precommit signature carried by the nodes' certificates, and on the
   evidence every node reports (``/v1/evidence``), which may name only validators
   the scenario made byzantine; every piece of evidence must itself verify.
4. **Audit** — ``cityledger audit verify --home`` on every node's data after the
   nodes are stopped: re-execution from genesis, certificates, signatures, and a
   row-by-row comparison of the store (the in-process :class:`node.audit.ChainAuditor`
   is what that command runs; it is used directly, see :func:`audit_home`).
5. **Liveness** — after a fault is removed, while at most f validators are faulty,
   every honest node commits a new block within :data:`LIVENESS_BOUND_S`
   (:func:`assert_recovers`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ledger import merkle
from ledger.block import Block, BlockHeader, Receipt
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.merkle import InclusionProof
from ledger.storage import open_leveldb
from ledger.validators import ValidatorSet
from ledger.votes import CommitCertificate
from lightclient.errors import VerificationError
from lightclient.validator_history import ValidatorHistory, verify_history
from node.config import Home
from tests.e2e.cluster import Cluster

LIVENESS_BOUND_S = 15.0


class InvariantViolation(AssertionError):
    pass


@dataclass
class Summary:
    """What one scenario's checks saw (printed by the tests, summed by the soak)."""

    height: int = 0
    nodes_checked: int = 0
    acknowledged: int = 0
    receipts_verified: int = 0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    evidence_offenders: set[str] = field(default_factory=set)
    equivocators: set[str] = field(default_factory=set)
    audited: list[str] = field(default_factory=list)
    audit_seconds: float = 0.0
    recovery_s: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"height {self.height}, {self.nodes_checked} nodes, {self.acknowledged} acked txs, "
            f"{self.receipts_verified} receipts verified, evidence against "
            f"{sorted(self.evidence_offenders) or 'nobody'}, audited {len(self.audited)}"
        )


# --- 1. no fork --------------------------------------------------------------------------------


@dataclass
class ChainView:
    """The agreed chain as read from the nodes: hash per height and certificate votes."""

    hashes: dict[int, bytes] = field(default_factory=dict)
    tops: dict[str, int] = field(default_factory=dict)  # node -> height checked
    headers: dict[int, BlockHeader] = field(default_factory=dict)
    # (validator, height, round) -> block hashes it precommitted, from certificates
    precommits: dict[tuple[bytes, int, int], set[bytes]] = field(
        default_factory=lambda: defaultdict(set)
    )
    sets: ValidatorHistory | None = None  # the verified validator-set history

    def set_at(self, genesis: Genesis, height: int) -> ValidatorSet:
        return genesis.validators if self.sets is None else self.sets.at(height)


def validator_history(cluster: Cluster, name: str) -> ValidatorHistory:
    """The validator-set changes ``name`` serves, verified from genesis alone."""
    genesis = _genesis(cluster)
    answer = cluster.get_canonical(name, "/v1/validators", timeout=10)
    try:
        return verify_history(answer.get("history", []), genesis)
    except VerificationError as exc:
        raise InvariantViolation(f"{name} serves a validator history that fails: {exc}") from None


def check_no_fork(cluster: Cluster, names: list[str]) -> ChainView:
    genesis = _genesis(cluster)
    view = ChainView()
    heights = {n: cluster.height(n) for n in names}
    unreachable = [n for n, h in heights.items() if h < 0]
    if unreachable:
        raise InvariantViolation(f"cannot check fork: {unreachable} do not answer")
    view.sets = validator_history(cluster, max(names, key=lambda n: heights[n]))

    def read(name: str) -> list[tuple[BlockHeader, CommitCertificate]]:
        chain = []
        for h in range(1, heights[name] + 1):
            answer = cluster.get_canonical(name, f"/v1/blocks/{h}/certificate", timeout=10)
            if not isinstance(answer, dict) or "header" not in answer:
                raise InvariantViolation(
                    f"{name} has height {heights[name]} but no block {h}: {str(answer)[:200]}"
                )
            try:
                header = BlockHeader.from_obj(answer["header"])
                cert = CommitCertificate.from_obj(answer["certificate"])
                cert.verify(
                    view.set_at(genesis, h), genesis.chain_id, height=h, block_hash=header.hash
                )
            except LedgerError as exc:
                raise InvariantViolation(f"{name} block {h}: bad certificate: {exc}") from None
            if answer["block_hash"] != header.hash:
                raise InvariantViolation(f"{name} block {h}: block_hash is not the header's hash")
            chain.append((header, cert))
        return chain

    with ThreadPoolExecutor(len(names)) as pool:
        chains = dict(zip(names, pool.map(read, names), strict=True))
    for name, chain in chains.items():
        view.tops[name] = len(chain)
        for header, cert in chain:
            h = header.height
            agreed = view.hashes.setdefault(h, header.hash)
            view.headers.setdefault(h, header)
            if agreed != header.hash:
                raise InvariantViolation(
                    f"FORK at height {h}: {name} has {header.hash.hex()[:16]}…, "
                    f"another node has {agreed.hex()[:16]}…"
                )
            for key, _ in cert.signatures:
                view.precommits[(key, h, cert.round)].add(cert.block_hash)
    return view


# --- 2. nothing lost ---------------------------------------------------------------------------


def check_nothing_lost(
    cluster: Cluster,
    names: list[str],
    view: ChainView,
    acked: dict[bytes, int],
    receipts: int | None = None,
) -> int:
    """Returns the number of receipts verified (acked transactions x nodes). Every acked
    transaction must be in the chain once; with ``receipts``, the proofs of that many of
    them (the lowest hashes: a random pick) are verified on each node, not of all."""
    genesis = _genesis(cluster)
    reference = max(names, key=lambda n: view.tops.get(n, -1))
    top = view.tops[reference]
    counts: Counter[bytes] = Counter()
    for h in range(1, top + 1):
        answer = cluster.get_canonical(reference, f"/v1/blocks/{h}", timeout=10)
        block = Block.from_obj(answer["block"])
        if block.hash != view.hashes[h]:
            raise InvariantViolation(f"{reference} serves block {h} whose hash is not the agreed")
        counts.update(tx.hash for tx in block.txs)
    twice = [h.hex()[:16] for h, c in counts.items() if c > 1]
    if twice:
        raise InvariantViolation(f"transactions committed more than once: {twice[:10]}")
    missing = [h.hex()[:16] for h in acked if counts[h] != 1]
    if missing:
        raise InvariantViolation(
            f"LOST: {len(missing)} acknowledged transactions are not in the chain "
            f"(height {top}): {missing[:10]}"
        )

    chosen = list(acked) if receipts is None else sorted(acked)[:receipts]

    def verify_on(name: str) -> int:
        checked_certs: set[tuple[int, bytes]] = set()
        for tx_hash in chosen:
            answer = cluster.get_canonical(name, f"/v1/txs/{tx_hash.hex()}", timeout=10)
            _verify_receipt(name, answer, tx_hash, genesis, view, checked_certs)
        return len(chosen)

    with ThreadPoolExecutor(len(names)) as pool:
        return sum(pool.map(verify_on, names))


def _verify_receipt(
    name: str,
    answer: Any,
    tx_hash: bytes,
    genesis: Genesis,
    view: ChainView,
    checked: set[tuple[int, bytes]],
) -> None:
    short = f"{name}: tx {tx_hash.hex()[:16]}…"
    if not isinstance(answer, dict) or "receipt" not in answer:
        raise InvariantViolation(f"LOST on {short}: no receipt: {answer}")
    try:
        header = BlockHeader.from_obj(answer["header"])
        cert = CommitCertificate.from_obj(answer["certificate"])
        receipt = Receipt.from_obj(answer["receipt"])
        proofs = {
            k: InclusionProof.from_obj(answer[k])
            for k in ("block_proof", "results_proof", "log_proof")
        }
    except (LedgerError, KeyError) as exc:
        raise InvariantViolation(f"{short}: malformed receipt answer: {exc}") from None
    if view.hashes.get(header.height) not in (None, header.hash):
        raise InvariantViolation(f"{short}: receipt's header is not the agreed block")
    if (header.height, header.hash) not in checked:
        try:
            cert.verify(
                view.set_at(genesis, header.height),
                genesis.chain_id,
                height=header.height,
                block_hash=header.hash,
            )
        except LedgerError as exc:
            raise InvariantViolation(f"{short}: certificate does not verify: {exc}") from None
        checked.add((header.height, header.hash))
    if receipt.tx_hash != tx_hash or receipt.height != header.height:
        raise InvariantViolation(f"{short}: receipt is for another transaction or height")
    log_index = header.log_size - header.tx_count + receipt.index
    checks = (
        ("block_proof", merkle.leaf_hash(tx_hash), receipt.index, header.tx_count, header.tx_root),
        (
            "results_proof",
            merkle.leaf_hash(receipt.hash),
            receipt.index,
            header.tx_count,
            header.results_root,
        ),
        ("log_proof", merkle.leaf_hash(tx_hash), log_index, header.log_size, header.log_root),
    )
    for proof_name, leaf, index, size, root in checks:
        proof = proofs[proof_name]
        if (proof.leaf_index, proof.tree_size) != (index, size):
            raise InvariantViolation(f"{short}: {proof_name} is for the wrong leaf")
        try:
            proof.verify(leaf, root)
        except LedgerError as exc:
            raise InvariantViolation(f"{short}: {proof_name} does not verify: {exc}") from None


# --- 3. no honest double-sign ------------------------------------------------------------------


def check_no_double_sign(
    cluster: Cluster, names: list[str], view: ChainView | None, summary: Summary
) -> None:
    from ledger.evidence import evidence_from_obj

    genesis = _genesis(cluster)
    by_key = {**cluster.former_keys, **{k: n for n, k in cluster.keys.items()}}
    sets = view if view is not None else ChainView()
    honest = set(cluster.honest())
    problems: list[str] = []
    for name in names:
        answer = cluster.get_canonical(name, "/v1/evidence")
        for item in answer.get("evidence", []):
            summary.evidence.append(item)
            kind = item.get("kind")
            try:  # committed (in a block) or pending (this node's pool): each must verify
                evidence = evidence_from_obj(item.get("evidence"))
                evidence.verify(genesis.chain_id, sets.set_at(genesis, evidence.height))
            except LedgerError as exc:
                problems.append(f"{name} reports evidence that does not verify: {exc}")
                continue
            offender = by_key.get(evidence.offender, evidence.offender.hex()[:12])
            summary.evidence_offenders.add(offender)
            if offender in honest:
                problems.append(f"{name} holds evidence against honest {offender} ({kind})")
    if cluster.witness is not None:
        for e in cluster.witness.equivocations():
            if e.height >= cluster.retired_at.get(e.validator, e.height + 1):
                continue  # a retired key's, signed after its node left it: not the node's
            offender = by_key.get(e.validator, e.validator.hex()[:12])
            summary.equivocators.add(offender)
            if offender in honest:
                problems.append(f"witness: honest {offender}: {e}")
    if view is not None:
        for (key, h, r), hashes in view.precommits.items():
            if len(hashes) > 1 and by_key.get(key) in honest:
                problems.append(
                    f"certificates: {by_key[key]} precommitted {len(hashes)} blocks at {h}/{r}"
                )
    if problems:
        raise InvariantViolation("DOUBLE-SIGN: " + "; ".join(problems[:10]))


# --- 4. audit ----------------------------------------------------------------------------------


def audit_cli_available() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", "verify", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and "--home" in proc.stdout


def audit_home(home: str, *, use_cli: bool = False) -> tuple[bool, str]:
    """Audit a stopped node's data: (ok, findings). ``use_cli`` runs the real command."""
    if use_cli:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "audit", "verify", "--home", home],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        return proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    from node.audit import ChainAuditor, StoreSource

    genesis = Genesis.load(Home(home).genesis)
    store = open_leveldb(Home(home).data)
    try:
        report = ChainAuditor(genesis, workers=0).run(StoreSource(store), compare_with=store)
    finally:
        store.close()
    text = "; ".join(str(f) for f in report.findings[:10])
    return report.ok, f"{report.heights} heights, {report.txs} txs, {text or 'no findings'}"


def audit_all(cluster: Cluster, names: list[str], summary: Summary) -> None:
    started = time.monotonic()
    use_cli = os.environ.get("CITYLEDGER_E2E_AUDIT_CLI") == "1"
    failures = []
    for name in names:
        assert not cluster.running(name), f"stop {name} before auditing its data"
        ok, text = audit_home(cluster.entry(name).home, use_cli=use_cli)
        if not ok:
            failures.append(f"{name}: {text}")
        summary.audited.append(name)
    summary.audit_seconds = time.monotonic() - started
    if failures:
        raise InvariantViolation("AUDIT failed: " + " | ".join(failures))


# --- 5. liveness -------------------------------------------------------------------------------


def assert_recovers(
    cluster: Cluster,
    names: list[str] | None = None,
    bound_s: float = LIVENESS_BOUND_S,
    *,
    above: int | None = None,
) -> float:
    """After a fault is removed: seconds until every node in ``names`` (default: the
    honest nodes that are up) commits a block above ``above`` (default: the highest
    height any of them reports now — pass it when they may not answer yet)."""
    names = names if names is not None else [n for n in cluster.honest() if n in cluster.up()]
    if above is None:
        above = cluster.max_height(names)
    took = cluster.wait_progress(names, above, bound_s)
    if took is None:
        rounds = {n: (cluster.status(n) or {}).get("consensus") for n in names}
        raise InvariantViolation(
            f"LIVENESS: {names} did not commit above {above} within {bound_s} s "
            f"(heights {cluster.heights(names)}, consensus {rounds})\n" + cluster.logs(15)
        )
    return took


# --- all of them -------------------------------------------------------------------------------


def check_all(
    cluster: Cluster,
    acked: dict[bytes, int],
    *,
    audit: bool = True,
    names: list[str] | None = None,
    settle_s: float = 30.0,
    receipts: int | None = None,
) -> Summary:
    """Invariants 1-4 on ``names`` (default: every node, restarted if needed);
    ``receipts``: see :func:`check_nothing_lost`.

    Every node is brought up and given ``settle_s`` to reach the same height first
    (a node that was down catches up by block sync); afterwards, with ``audit``,
    all nodes are stopped and their stores audited.
    """
    summary = Summary(acknowledged=len(acked))
    names = names if names is not None else cluster.names
    for name in names:
        if name in cluster.paused:
            cluster.resume(name)
        if not cluster.running(name):
            cluster.start_node(name, None)
    honest_names = [n for n in names if n not in cluster.faulty]
    t = time.monotonic()
    cluster.wait(lambda: _same_height(cluster, honest_names), settle_s, interval=0.5)
    summary.timings["settle"] = time.monotonic() - t
    t = time.monotonic()
    view = check_no_fork(cluster, names)
    summary.timings["fork"] = time.monotonic() - t
    summary.height = max(view.hashes, default=0)
    summary.nodes_checked = len(names)
    t = time.monotonic()
    summary.receipts_verified = check_nothing_lost(cluster, honest_names, view, acked, receipts)
    summary.timings["lost"] = time.monotonic() - t
    check_no_double_sign(cluster, names, view, summary)
    if audit:
        t = time.monotonic()
        cluster.stop_all()
        summary.timings["stop"] = time.monotonic() - t
        audit_all(cluster, names, summary)
        summary.timings["audit"] = summary.audit_seconds
    return summary


def _same_height(cluster: Cluster, names: list[str]) -> bool:
    heights = cluster.heights(names)
    return len(set(heights.values())) == 1 and min(heights.values()) > 0


def _genesis(cluster: Cluster) -> Genesis:
    assert cluster.genesis is not None
    return cluster.genesis
