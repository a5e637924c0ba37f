"""The proposal state machine under random hostile sequences (hypothesis).

Random organisations — founding or not, suspended or with a revoked admin key —
propose, approve and withdraw random proposals while heights pass. Whatever the
sequence: a proposal executes at most once, only with more than the threshold
of distinct founding approvals counted at that moment, never after its expiry
or withdrawal; a status leaves ``pending`` once, for executed, withdrawn or
refused (expired is computed), and a closed proposal never changes again.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import state_keys as sk
from contracts.governance_params import GovParams
from contracts.governance_records import Proposal, Suspension, suspended_key
from contracts.identity_records import Member
from contracts.record_cache import typed_record
from ledger.encoding import encode

from .gov_kit import ADMIN, proposal, role_grant
from .harness import RESTRICTED, Chain, make_genesis

TTL = 8
ACTORS = sorted(ADMIN)  # four founders with admins, a trader and a carrier
AGENCIES = ["audit", "customs", "energy", "permits", "port"]

FOUNDER_ADMINS = ["customs", "energy", "permits", "port"]
OPS = ["approve"] * 8 + ["propose"] * 2 + ["withdraw", "wait", "suspend", "unsuspend", "revoke"]
ops = st.lists(
    st.tuples(
        st.sampled_from(OPS),
        st.one_of(st.sampled_from(FOUNDER_ADMINS), st.sampled_from(ACTORS)),
        st.integers(0, 3),
    ),
    min_size=15,
    max_size=40,
)


def founders_now(chain: Chain) -> set[str]:
    return {o for o in AGENCIES if suspended_key(o) not in chain.state.data}


def disturb(chain: Chain, op: str, org: str) -> None:
    """What the rest of the world does meanwhile, written straight into state."""
    if op == "suspend":
        record = Suspension(org, "test", chain.height, "gov-" + "00" * 16)
        chain.state.data[record.key] = encode(record.to_obj())
    elif op == "unsuspend":
        chain.state.data.pop(suspended_key(org), None)
    elif op == "revoke":
        key = sk.member_key(ADMIN[org].public_key)
        member = typed_record(Member, chain.state.data[key])
        revoked = member.replace(status="revoked", revoked_height=chain.height)
        chain.state.data[key] = encode(revoked.to_obj())


def check_transition(
    chain: Chain, before: Proposal | None, after: Proposal, executed: bool
) -> None:
    params = GovParams()
    if before is not None and before.status != "pending":
        assert after == before, "a closed proposal changed"
    assert after.status in ("pending", "executed", "withdrawn", "refused")
    assert len(set(after.approvals)) == len(after.approvals)
    if after.status != "pending" and (before is None or before.status == "pending"):
        assert after.closed_height == chain.height <= after.expires_height
    if executed:
        counting = founders_now(chain)
        counted = len(set(after.approvals) & counting)
        assert counted >= params.needed(len(counting))
        assert after.status == "executed"


@settings(max_examples=120, deadline=None)
@given(ops)
def test_random_hostile_sequences_keep_the_state_machine(steps: list[tuple[str, str, int]]) -> None:
    chain = Chain(
        genesis=make_genesis({"restricted_hs_codes": RESTRICTED, "gov_proposal_ttl": TTL})
    )
    ids: list[str] = []
    executions: dict[str, int] = {}
    for n, (op, org, arg) in enumerate(steps):
        if op == "wait":
            for _ in range(2 * arg + 1):
                chain.block([])
            continue
        if op in ("suspend", "unsuspend", "revoke"):
            disturb(chain, op, org)
            continue
        if op == "propose":
            payload = role_grant("port", f"prop-{n}", ("customs",))
        elif not ids:
            continue
        else:
            payload = {"id": ids[arg % len(ids)]}
        snapshot = {pid: proposal(chain, pid) for pid in ids}
        receipt = chain.send(ADMIN[org], f"gov.{op}", payload)
        for event in receipt.events:
            if event.type == "gov.proposed":
                ids.append(str(event.attrs["id"]))
        done = {str(e.attrs["id"]) for e in receipt.events if e.type == "gov.executed"}
        for pid in done:
            executions[pid] = executions.get(pid, 0) + 1
        for pid in ids:
            check_transition(chain, snapshot.get(pid), proposal(chain, pid), pid in done)
        if not receipt.ok:
            assert receipt.events == ()
    assert all(count == 1 for count in executions.values())
