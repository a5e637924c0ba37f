"""Issue 18, "Done when": docs/operations.md followed command by command, as operators
type them (the ``cityledger`` CLI; only the node processes are started by the test,
with the same ``cityledger node start`` an operator runs, and stopped by pid).

1. Four agencies, each in its own directory, make their keys and a signed join request;
   a coordinator checks and assembles the draft (not a devnet: ``min_validators`` 4);
   each agency signs its own copy (``genesis sign --out``) and the coordinator adds the
   four signatures in another order (``genesis add-signature``); each agency runs
   ``node init`` and ``node start`` in its own home.
2. The founders register a trader, a consignee and a carrier, and an inspector; a permit
   is issued and inspected; a shipment is declared, handed to the carrier, loaded and
   cleared by customs.
3. A fifth city makes its keys and request as the founders did, starts a node that the
   founders let follow (``node allow-observer``), catches up, is registered, gets a
   customs officer only by governance (``gov propose role-grant``; alone it is refused),
   is voted in (``gov propose validator-add``, approvals of 3 of the 4 founders) and
   signs a certificate after the effective height.
4. A founding agency leaves (``gov propose validator-remove``); its node is stopped past
   the effective height; the three remaining founders and the new city commit on.
5. A client holding only the coordinator's ``genesis.json`` (and an empty cache) checks
   the permit, the provenance (read by the new city's officer), the validator history
   and the whole chain (``audit verify``) against the new city's node.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devnet import processes
from devnet.layout import Network, NodeEntry
from ledger.founding import GenesisFile
from ledger.founding_checks import MIN_VALIDATORS_KEY
from tests.integration.netkit import cli_ok, height, logs, signers, wait_until
from tests.unit.cli.kit import CONTAINER, run

CHAIN = "korea-ports"
# organisation id -> (name, kind, city, its other members NAME=ROLE); 4 founders, 4 validators
FOUNDERS = {
    "busan-customs": ("Busan Main Customs", "agency", "Busan", ["officer=customs"]),
    "busan-permits": ("Busan Permit Office", "agency", "Busan", ["clerk=permit_office"]),
    "busan-audit": ("Busan Audit Office", "agency", "Busan", ["auditor=auditor"]),
    "sejong-customs": ("Sejong Customs Office", "agency", "Sejong", ["officer=customs"]),
}
NEWCOMER, LEAVER = "incheon-customs", "sejong-customs"
APPROVERS = ["busan-permits", "busan-audit"]  # with the proposer, 3 of 4: more than 2/3


# later organisations: id -> (name, kind, city, members); each sends a request too
LATER = {
    "hanbit-electronics": ("Hanbit Electronics", "trader", "Busan", ["clerk=trader"]),
    "sejong-agritech": ("Sejong Agritech", "trader", "Sejong", []),
    "korea-ocean-lines": ("Korea Ocean Lines", "carrier", "Busan", ["crew=carrier"]),
    NEWCOMER: ("Incheon Customs", "agency", "Incheon", []),
}


@dataclass
class Walk:
    tmp: Path
    base: int
    net: Network

    def key(self, org: str, member: str = "admin") -> str:
        return str(self.tmp / org / "keys" / f"{org}-{member}.json")

    def request(self, org: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.tmp / "coordinator" / f"{org}.req").read_text())
        return doc

    def tx(self, key: str, *args: str, node: str = "busan-customs") -> dict[str, Any]:
        """``cityledger tx …`` / ``gov …`` signed by ``key``, sent to ``node``'s node and
        checked with the agency's copy of the genesis."""
        common = ["--key", key, "--node", self.net.node(node).url, "--wait", "--json",
                  "--genesis", str(self.tmp / node / "genesis.json")]  # fmt: skip
        out: dict[str, Any] = json.loads(cli_ok(*args, *common).stdout)
        return out


def request(tmp: Path, org: str, *how: str) -> Path:
    """On the organisation's own host: its keys and its signed request, which it then
    sends (a copy: "e-mail") to the coordinator."""
    name, kind, city, members = {**FOUNDERS, **LATER}[org]
    out = tmp / org / f"{org}.request.json"
    cli_ok("genesis", "request", "--chain-id", CHAIN, "--org", org, "--name", name,
           "--kind", kind, "--city", city, "--home", str(tmp / org), "--out", str(out),
           "--no-passphrase", *(a for m in members for a in ("--member", m)), *how)  # fmt: skip
    (tmp / "coordinator").mkdir(exist_ok=True)
    return Path(shutil.copy(out, tmp / "coordinator" / f"{org}.req"))


def found(tmp: Path, base: int) -> None:
    """Founding steps 1-4: requests, assembly, parallel signatures, the checked file."""
    requests = [
        request(tmp, org, "--p2p", f"127.0.0.1:{base + i}") for i, org in enumerate(FOUNDERS)
    ]
    for path in requests:
        cli_ok("genesis", "verify-request", str(path))
    draft = tmp / "coordinator" / "genesis.json"
    cli_ok("genesis", "assemble", *map(str, requests), "--chain-id", CHAIN, "--out", str(draft))
    signatures = []
    for org in FOUNDERS:  # each on its own copy, at the same time: nobody waits for another
        copy = Path(shutil.copy(draft, tmp / org / "draft.json"))
        unsigned = run(["genesis", "verify", str(copy), "--json"])
        assert unsigned.exit_code == 1  # nobody has signed yet; the report is still shown
        assert json.loads(unsigned.stdout)["unsigned"] == sorted(FOUNDERS)
        sig = tmp / org / f"{org}.sig.json"
        cli_ok("genesis", "sign", str(copy), "--key", str(tmp / org / "keys" / f"{org}-admin.json"),
               "--out", str(sig))  # fmt: skip
        signatures.append(Path(shutil.copy(sig, tmp / "coordinator")))
    cli_ok("genesis", "add-signature", str(draft), *map(str, reversed(signatures)))
    report = json.loads(cli_ok("genesis", "verify", str(draft), "--json").stdout)
    assert [s["org"] for s in report["signed"]] == sorted(FOUNDERS) and not report["problems"]
    assert len(report["validators"]) == 4 and not report["devnet"]
    app = GenesisFile.load(str(draft)).genesis.app
    assert app.get(MIN_VALIDATORS_KEY, 4) == 4  # the default: a real network, not a devnet
    for org in FOUNDERS:
        shutil.copy(draft, tmp / org / "genesis.json")  # the same file back to every agency


def start(walk: Walk, org: str, index: int) -> NodeEntry:
    """Founding step 5 (and the new city's node): ``node init`` in the organisation's own
    home, where its node key already is, then ``node start``."""
    home = walk.tmp / org
    p2p, api = f"127.0.0.1:{walk.base + index}", f"127.0.0.1:{walk.base + 100 + index}"
    cli_ok("node", "init", "--home", str(home), "--genesis", str(home / "genesis.json"),
           "--key", str(home / "node_key.json"), "--p2p", p2p, "--api", api)  # fmt: skip
    entry = NodeEntry(org, str(home), p2p, api)
    walk.net.nodes.append(entry)
    processes.start_node(entry)
    return entry


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    tmp = tmp_path_factory.mktemp("walkthrough")
    walk = Walk(tmp, processes.free_base_port(), Network(str(tmp), CHAIN))
    saved = os.environ.get("CITYLEDGER_CACHE")
    os.environ["CITYLEDGER_CACHE"] = str(tmp / "client-cache")  # nothing another test cached
    try:
        found(tmp, walk.base)
        for i, org in enumerate(FOUNDERS):
            start(walk, org, i)
        if not processes.wait_for_height(walk.net, 1, 60):
            raise AssertionError("the founded network did not commit block 1:\n" + logs(walk.net))
        yield walk
    finally:
        processes.stop_all(walk.net)
        if saved is None:
            os.environ.pop("CITYLEDGER_CACHE", None)
        else:
            os.environ["CITYLEDGER_CACHE"] = saved


def register(walk: Walk, org: str) -> int:
    """An organisation that comes later sends a request too; a founding agency's admin
    checks it and registers the organisation in it; the height that committed it."""
    path = request(walk.tmp, org, "--no-validator") if org != NEWCOMER else None
    source = str(path or walk.tmp / "coordinator" / f"{org}.req")
    cli_ok("genesis", "verify-request", source)
    done = walk.tx(walk.key("busan-customs"), "tx", "identity", "register-org", "--request", source)
    assert done["status"] == "committed" and done["verified"], done
    return int(done["height"])


def records(walk: Walk) -> None:
    """Members registered, a permit issued and inspected, a shipment's journey."""
    for org in ("hanbit-electronics", "sejong-agritech", "korea-ocean-lines"):
        register(walk, org)
    inspector = str(walk.tmp / "busan-permits" / "keys" / "busan-permits-inspector.json")
    cli_ok("keys", "new", "--out", inspector, "--no-passphrase")
    walk.tx(walk.key("busan-permits"), "tx", "identity", "register-member", "--key-file",
            inspector, "--name", "inspector", "--role", "inspector",
            node="busan-permits")  # fmt: skip
    trader, clerk = walk.key("hanbit-electronics", "clerk"), walk.key("busan-permits", "clerk")
    walk.tx(trader, "tx", "permit", "apply", "--id", "P-WALK-1", "--type", "business",
            "--address", "1 Pier Rd, Busan", "--description", "bonded warehouse")  # fmt: skip
    for step in ("review", "approve"):
        walk.tx(clerk, "tx", "permit", step, "P-WALK-1", node="busan-permits")
    walk.tx(clerk, "tx", "permit", "issue", "P-WALK-1", "--valid-from", "2020-01-01",
            "--valid-until", "2060-01-01", node="busan-permits")  # fmt: skip
    walk.tx(inspector, "tx", "permit", "inspect", "P-WALK-1", "--result", "pass",
            node="busan-permits")  # fmt: skip
    crew, officer = walk.key("korea-ocean-lines", "crew"), walk.key("busan-customs", "officer")
    walk.tx(trader, "tx", "shipment", "declare", "--id", "S-WALK-1",
            "--consignor", "hanbit-electronics", "--consignee", "sejong-agritech",
            "--declarant", "hanbit-electronics", "--origin", "KRPUS", "--destination", "SGSIN",
            "--goods", "851712;mobile phones;500;PCE;12500000;EUR",
            "--container", CONTAINER)  # fmt: skip
    walk.tx(trader, "tx", "shipment", "handoff", "offer", "S-WALK-1", "--to", "korea-ocean-lines")
    walk.tx(crew, "tx", "shipment", "handoff", "accept", "S-WALK-1")
    walk.tx(crew, "tx", "shipment", "milestone", "S-WALK-1", "--event", "loaded",
            "--place", "KRPUS")  # fmt: skip
    walk.tx(officer, "tx", "customs", "clear", "S-WALK-1", "--reason", "documents in order")


def vote(walk: Walk, kind: str, *change: str) -> int:
    """busan-customs proposes, two more founders approve; the height it executed at."""
    proposal = walk.tx(walk.key("busan-customs"), "gov", "propose", kind, *change)
    pid = proposal["proposal_id"]
    for org in APPROVERS:
        receipt = walk.tx(walk.key(org), "gov", "approve", pid, node=org)
    executed = [e for e in receipt["receipt"]["events"] if e["type"] == "gov.executed"]
    assert executed, receipt["receipt"]
    shown = json.loads(cli_ok("gov", "show", pid, "--key", walk.key("busan-audit"), "--node",
                              walk.net.nodes[0].url, "--genesis", str(walk.tmp / "busan-audit" /
                              "genesis.json"), "--json").stdout)  # fmt: skip
    assert shown["status"] == "executed" and shown["verified"], shown
    return int(receipt["height"])


def join(walk: Walk) -> tuple[str, int]:
    """A fifth city: keys and request as a founder made them, a node that follows, the
    vote; returns its node key and the first height whose certificate it signed."""
    request(walk.tmp, NEWCOMER, "--p2p", f"127.0.0.1:{walk.base + 4}")
    shutil.copy(walk.tmp / "coordinator" / "genesis.json", walk.tmp / NEWCOMER / "genesis.json")
    key = str(walk.request(NEWCOMER)["validator"]["public_key"])
    for org in FOUNDERS:  # each founder, on its host: let the new city's node link
        cli_ok("node", "allow-observer", "--home", str(walk.tmp / org), key)
    target = height(walk.net.nodes[0])
    entry = start(walk, NEWCOMER, len(FOUNDERS))
    wait_until(lambda: height(entry) >= target > 1, 60, "the new node's catch-up")
    registered = register(walk, NEWCOMER)
    wait_until(lambda: height(entry) >= registered, 30, "the new node to see its registration")
    grant_officer(walk)
    decided = vote(walk, "validator-add", "--public-key", key, "--name", NEWCOMER, "--power",
                   "1", "--org", NEWCOMER, "--p2p", entry.p2p)  # fmt: skip
    first: list[int] = []

    def signed_one() -> bool:
        top = height(walk.net.nodes[0])
        later = range(decided + 3, top + 1)  # certificates of the effective height on
        first.extend(h - 1 for h in later if key in signers(walk.net.nodes[0], h))
        return bool(first)

    wait_until(signed_one, 60, "the new city's first signed certificate")
    return key, first[0]


def grant_officer(walk: Walk) -> None:
    """The new city's admin cannot make itself a customs officer; the founders grant it."""
    officer = walk.key(NEWCOMER, "officer")
    made = json.loads(cli_ok("keys", "new", "--out", officer, "--no-passphrase", "--json").stdout)
    alone = run(["tx", "identity", "register-member", "--key-file", officer, "--name", "officer",
                 "--role", "customs", "--key", walk.key(NEWCOMER), "--node",
                 walk.net.node(NEWCOMER).url, "--wait"])  # fmt: skip
    assert alone.exit_code == 1 and "consent_required" in alone.output, alone.output
    vote(walk, "role-grant", "--org", NEWCOMER, "--public-key", made["public_key"], "--name",
         "officer", "--role", "customs")  # fmt: skip


def leave(walk: Walk, newcomer: str) -> int:
    """A founding agency leaves: voted out, its node stopped past the effective height;
    the remaining four commit, the new city among the signers; returns the height at
    which the leaver's node was stopped."""
    key = str(walk.request(LEAVER)["validator"]["public_key"])
    effective = vote(walk, "validator-remove", "--public-key", key) + 2
    wait_until(lambda: height(walk.net.nodes[0]) > effective, 30, "the effective height")
    processes.stop_node(walk.net.node(LEAVER))
    stopped = height(walk.net.nodes[0])
    wait_until(lambda: height(walk.net.nodes[0]) > stopped + 5, 30, "commits without the leaver")
    for h in range(effective + 1, stopped + 6):
        assert key not in signers(walk.net.nodes[0], h), f"the leaver signed height {h - 1}"

    def newcomer_signs() -> bool:  # not every certificate needs it: 3 of 4 are enough
        top = height(walk.net.nodes[0])
        return any(newcomer in signers(walk.net.nodes[0], h) for h in range(stopped + 1, top + 1))

    wait_until(newcomer_signs, 30, "a certificate the new city signed after the leaver stopped")
    return stopped


def verify_with_genesis_alone(walk: Walk, newcomer_key: str) -> None:
    """A client holding only the coordinator's genesis.json, asking the new city's node."""
    client = walk.tmp / "client"
    client.mkdir()
    genesis = shutil.copy(walk.tmp / "coordinator" / "genesis.json", client / "genesis.json")
    os.environ["CITYLEDGER_CACHE"] = str(client / "cache")  # no history fetched before
    ask = ["--node", walk.net.node(NEWCOMER).url, "--genesis", str(genesis)]
    permit = json.loads(cli_ok("permit", "check", "P-WALK-1", *ask, "--json").stdout)
    assert permit["valid"] is True and permit["verified"], permit
    assert "verified" in cli_ok("permit", "show", "P-WALK-1", *ask).output
    officer = walk.key(NEWCOMER, "officer")  # granted by governance after the founding
    shown = cli_ok("shipment", "provenance", "S-WALK-1", *ask, "--key", officer, "--json")
    answer = json.loads(shown.stdout)
    assert [e["event"] for e in answer["history"]] == [
        "declared", "custody_offered", "custody_transferred", "milestone", "customs_decision"
    ], answer["history"]  # fmt: skip
    assert answer["verified"] and answer["voting_power"] * 3 > answer["total_power"] * 2
    now = json.loads(cli_ok("validators", *ask, "--json").stdout)
    names = sorted(v["name"] for v in now["validators"])
    assert names == sorted([*(o for o in FOUNDERS if o != LEAVER), NEWCOMER]), now
    assert [len(c["validators"]) for c in now["history"]] == [5, 4], now["history"]
    founding = json.loads(cli_ok("validators", *ask, "--height", "1", "--json").stdout)
    assert sorted(v["name"] for v in founding["validators"]) == sorted(FOUNDERS)
    assert newcomer_key in {v["public_key"] for v in now["validators"]}
    audit = cli_ok("audit", "verify", *ask, "--key", walk.key("busan-audit", "auditor"))
    assert "the chain checks out" in audit.output, audit.output


def test_found_join_leave_and_verify_with_the_original_genesis(walk: Walk) -> None:
    began = time.monotonic()
    records(walk)
    recorded = time.monotonic()
    key, first_signed = join(walk)
    joined = time.monotonic()
    stopped = leave(walk, key)
    left = time.monotonic()
    verify_with_genesis_alone(walk, key)
    verified = time.monotonic() - left
    print(f"\nwalkthrough: records {recorded - began:.1f} s, join and vote "
          f"{joined - recorded:.1f} s (first signed height {first_signed}), leave "
          f"{left - joined:.1f} s (stopped at {stopped}), verify {verified:.1f} s")  # fmt: skip
