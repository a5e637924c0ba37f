"""A chain with the permits the explorer shows: one issued, one revoked, one tampered with.

Built with the API tests' :class:`~tests.unit.node.api.conftest.TestNode` (the real
executor and contracts, 3-of-4 certificates), its blocks at times the caller picks: the
vectors pin them, the browser test puts the last blocks at the real clock's now (the
browser judges freshness by its own clock).
"""

from __future__ import annotations

from ledger.encoding import Value
from tests.unit.node.api.conftest import TestNode

VALID = "BLD-2026-0042"
REVOKED = "BLD-2026-0043"
ADDRESS = "12 Canal Street, Rotterdam"
YEAR_MS = 365 * 86_400_000


def build_permit_chain(node: TestNode, start_ms: int, step_ms: int, last_ms: int) -> None:
    """Blocks 1-5 from ``start_ms`` every ``step_ms``: both permits applied, reviewed,
    approved, issued (valid for a year from ``start_ms``); block 6 at ``last_ms`` revokes
    :data:`REVOKED`, block 7 at ``last_ms + 1`` is empty."""
    t = node.tx
    apply: list[Value] = [
        {"id": pid, "type": "building", "address": ADDRESS, "description": what}
        for pid, what in ((VALID, "two-storey extension"), (REVOKED, "roof terrace"))
    ]
    node.commit([t("acme-trader", "permit.apply", p) for p in apply], start_ms)
    for n, kind in enumerate(("permit.review", "permit.approve"), start=1):
        node.commit(
            [t("permit-officer", kind, {"permit_id": pid}) for pid in (VALID, REVOKED)],
            start_ms + n * step_ms,
        )
    window = {"valid_from": start_ms, "valid_until": start_ms + YEAR_MS}
    node.commit(
        [
            t("permit-officer", "permit.issue", {"permit_id": pid, **window})
            for pid in (VALID, REVOKED)
        ],
        start_ms + 3 * step_ms,
    )
    node.commit([], start_ms + 4 * step_ms)
    reason = {"permit_id": REVOKED, "reason": "works beyond the approved plans"}
    node.commit([t("permit-officer", "permit.revoke", reason)], last_ms)
    node.commit([], last_ms + 1)
