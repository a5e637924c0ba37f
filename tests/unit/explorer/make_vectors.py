"""Writes tests/vectors/explorer/*.json: the bytes a node serves the permit page, valid and
tampered, with the verdict each must get. Run: ``python -m tests.unit.explorer.make_vectors``.

Every vector is real: a chain built with the real executor and contracts
(:mod:`tests.unit.explorer.permit_chain`), its answers fetched from the real API in
msgpack, then (for the tampered ones) one thing changed the way a lying node would.
The Python verifier (:mod:`tests.unit.explorer.page_check`) and the browser's
(``node/api/explorer/verify.mjs``, run by ``node``) must both reach ``expect``.
Deterministic (keys from labels, fixed times), so a test checks the files are current.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from contracts.state_keys import permit_key
from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode, encode
from ledger.validators import ValidatorUpdate
from ledger.votes import Vote, VoteType
from node.api.app import make_app
from node.config import APIConfig
from tests.unit.explorer.encoding_vectors import encoding_vectors
from tests.unit.explorer.permit_chain import REVOKED, VALID, build_permit_chain
from tests.unit.node.api.conftest import GENESIS_TIME, VALIDATORS, TestNode
from tests.unit.node.valset_kit import KIND, registered

DIR = Path(__file__).resolve().parents[2] / "vectors" / "explorer"
START = GENESIS_TIME + 1_000
STEP = 1_000
LAST = START + 600_000
NOW = LAST + 5_000
MAX_AGE = 60_000
ISSUE_HEIGHT = 4
ABSENT = "BLD-2026-9999"
BEFORE_REVOCATION = START + 3 * STEP + 500
MSGPACK = {"Accept": "application/msgpack"}

Tamper = Callable[[dict[str, Any]], None]


def changed_chain() -> TestNode:
    """The permit chain after a validator-set change: block 1 re-weights validator-0 to
    power 2 (in force from height 3), so every later certificate is checked against a set
    the genesis file does not hold."""
    node = TestNode()
    update = ValidatorUpdate(VALIDATORS[0].public_key, 2, "validator-0")
    with registered():
        node.commit([node.tx("customs-admin", KIND, {"updates": [update.to_obj()]})], START - 3000)
    node.commit([], START - 2000)
    node.commit([], START - 1000)
    build_permit_chain(node, START, STEP, LAST)
    return node


async def fetch(node: TestNode, paths: dict[str, str]) -> dict[str, bytes]:
    """The msgpack bytes ``node``'s API serves at each of ``paths``."""
    out = {}
    async with TestClient(TestServer(make_app(node, APIConfig(), clock=lambda: NOW))) as client:
        for name, path in paths.items():
            response = await client.get(path, headers=MSGPACK)
            assert response.status == 200, await response.text()
            out[name] = await response.read()
    return out


async def served() -> dict[str, bytes]:
    """The msgpack bytes a node of the permit chain serves the page (and ``changed_*``: a
    node of the chain with a validator-set change)."""
    node = TestNode()
    build_permit_chain(node, START, STEP, LAST)
    changed = await fetch(
        changed_chain(), {"genesis": "/v1/genesis", "validators": "/v1/validators",
                          "valid": f"/v1/permits/{VALID}"}
    )  # fmt: skip
    paths = {
        "genesis": "/v1/genesis",
        "validators": "/v1/validators",
        "valid": f"/v1/permits/{VALID}",
        "revoked": f"/v1/permits/{REVOKED}",
        "revoked_then": f"/v1/permits/{REVOKED}?height={ISSUE_HEIGHT}",
        "block": "/v1/blocks/1",
        "absent": f"/v1/state/{permit_key(ABSENT).hex()}",
        "present": f"/v1/state/{permit_key(VALID).hex()}",
        "consistency": "/v1/log/consistency?old=2",
    }
    return {**await fetch(node, paths), **{f"changed_{k}": v for k, v in changed.items()}}


def vector(name: str, what: str, raw: dict[str, bytes], **fields: Any) -> dict[str, Any]:
    expect = fields.pop("expect")
    base: dict[str, Any] = {
        "kind": "permit",
        "name": name,
        "what": what,
        "permit_id": VALID,
        "genesis_hash": _sha(raw["genesis"]),
        "genesis": raw["genesis"].hex(),
        "validators": raw["validators"].hex(),
        "answer": raw["valid"].hex(),
        "answers_at": {},
        "absence": None,
        "now_ms": NOW,
        "at_ms": None,
        "max_age_ms": MAX_AGE,
    }
    base.update(fields)
    base["expect"] = {"verified": expect[0], "reason": expect[1], "valid": expect[2]}
    return base


def _sha(data: bytes) -> str:
    from hashlib import sha256

    return sha256(data).hexdigest()


def tampered(raw: bytes, change: Tamper) -> str:
    """``raw``'s answer with ``change`` made to it, canonical again (as a lying node sends)."""
    answer = copy.deepcopy(decode(raw))
    change(answer)
    return encode(answer).hex()


def forge_record(answer: dict[str, Any]) -> None:
    answer["permit"]["record"]["holder"] = "globex"


def _forge_proof(answer: dict[str, Any]) -> None:
    record = answer["permit"]["record"]
    record["valid_until"] += 10 * 365 * 86_400_000
    answer["permit"]["proof"]["value"] = encode(record)


def flip_signature(answer: dict[str, Any]) -> None:
    key, sig = answer["certificate"]["signatures"][0]
    answer["certificate"]["signatures"][0] = [key, bytes([sig[0] ^ 1]) + sig[1:]]


def _two_signers(answer: dict[str, Any]) -> None:
    answer["certificate"]["signatures"] = answer["certificate"]["signatures"][:2]


def _fresher_header(answer: dict[str, Any]) -> None:
    answer["header"]["time_ms"] += 3_600_000


def _mark_empty_sibling(answer: dict[str, Any]) -> None:
    """The same path with an empty sibling sent as a hash and marked in the bitmap: the
    root still comes out, but a proof has one form only (docs/formats-state.md)."""
    proof = answer["permit"]["proof"]
    bits = int.from_bytes(proof["bitmap"], "big")
    top = 8 * len(proof["bitmap"]) - 1
    level = next(i for i in range(proof["depth"]) if not (bits >> (top - i)) & 1)
    before = sum(1 for i in range(level) if (bits >> (top - i)) & 1)
    proof["bitmap"] = (bits | 1 << (top - level)).to_bytes(len(proof["bitmap"]), "big")
    proof["siblings"] = [*proof["siblings"][:before], bytes(32), *proof["siblings"][before:]]


def _change_tx(answer: dict[str, Any]) -> None:
    answer["block"]["txs"][0]["payload"]["description"] = "a ten-storey tower"


def _drop_tx(answer: dict[str, Any]) -> None:
    answer["block"]["txs"] = answer["block"]["txs"][1:]


def _truncate_history(answer: dict[str, Any]) -> None:
    answer["history"] = answer["history"][:-1]


def _outsider_signs(answer: dict[str, Any]) -> None:
    cert = answer["certificate"]
    outsider = PrivateKey.from_label("not-a-validator")
    vote = Vote.create(
        outsider, "cityledger-test", VoteType.PRECOMMIT, cert["height"], cert["round"],
        cert["block_hash"],
    )  # fmt: skip
    cert["signatures"] = sorted([*cert["signatures"], [vote.validator, vote.signature]])


def _forged_change(answer: dict[str, Any]) -> None:
    """A validator change the node made up: a set of one key of its own, 'certified' by a
    copy of the permit answer's header and certificate."""
    rogue = PrivateKey.from_label("rogue-validator")
    header = copy.deepcopy(answer["header"])
    new_set: list[Value] = [{"name": "rogue", "power": 1, "public_key": rogue.public_key}]
    from hashlib import sha256

    header["next_validators_hash"] = sha256(encode(new_set)).digest()
    cert = answer["certificate"]
    answer["history"] = [
        {"height": header["height"], "header": header, "certificate": cert, "validators": new_set}
    ]


def permit_vectors(raw: dict[str, bytes]) -> list[dict[str, Any]]:
    """(name, what, fields changed from the valid vector, (verified, reason has, valid))."""
    valid, revoked = raw["valid"], {"permit_id": REVOKED, "answer": raw["revoked"].hex()}
    changed = {k: raw[f"changed_{k}"].hex() for k in ("genesis", "validators")}
    changed |= {"answer": raw["changed_valid"].hex(), "genesis_hash": _sha(raw["changed_genesis"])}
    empty_history = tampered(raw["changed_validators"], lambda answer: answer.update(history=[]))
    at_before = {**revoked, "at_ms": BEFORE_REVOCATION}
    table: list[tuple[str, str, dict[str, Any], tuple[bool, str, bool | None]]] = [
        ("valid", "an issued permit, fresh answer", {}, (True, "3 of 4", True)),
        ("revoked", "a revoked permit: verified, and not valid", revoked, (True, "3 of 4", False)),
        ("revoked-at-before", "the revoked permit at a time before its revocation: judged as "
         "it stood then, from its proven state at the issue height",
         {**at_before, "answers_at": {str(ISSUE_HEIGHT): raw["revoked_then"].hex()}},
         (True, "3 of 4", True)),
        ("revoked-at-wrong-height", "as above, but the node answers the older question at "
         "the latest height", {**at_before, "answers_at": {str(ISSUE_HEIGHT): revoked["answer"]}},
         (False, "asked for height", None)),
        ("forged-record", "the record shown is not the proven value",
         {"answer": tampered(valid, forge_record)}, (False, "forged record", None)),
        ("forged-proof", "record and proven value changed together",
         {"answer": tampered(valid, _forge_proof)}, (False, "does not lead to", None)),
        ("proof-two-forms", "a state proof with an empty sibling marked and sent",
         {"answer": tampered(valid, _mark_empty_sibling)}, (False, "malformed state proof", None)),
        ("bad-signature", "one certificate signature has a flipped bit",
         {"answer": tampered(valid, flip_signature)}, (False, "bad signature", None)),
        ("two-signers", "a certificate with 2 of 4 signatures",
         {"answer": tampered(valid, _two_signers)}, (False, "more than 2/3", None)),
        ("header-time-moved", "an old answer whose header time was moved forward",
         {"answer": tampered(valid, _fresher_header)}, (False, "is for block", None)),
        ("outsider-signature", "the certificate carries a non-validator's signature",
         {"answer": tampered(valid, _outsider_signs)}, (False, "not a validator", None)),
        ("truncated-history", "the last history entry left out",
         {"answer": tampered(valid, _truncate_history)}, (False, "truncated", None)),
        ("stale", "a real answer 65 s after its block: over the 60 s limit",
         {"now_ms": LAST + 1 + 65_000}, (False, "over the limit", None)),
        ("wrong-genesis", "the link names another chain's genesis",
         {"genesis_hash": "00" * 32}, (False, "genesis in the link", None)),
        ("other-permit", "the node answers with another permit",
         {"answer": revoked["answer"]}, (False, "another key", None)),
        ("forged-validator-change", "the node adds a validator-set change of its own",
         {"validators": tampered(raw["validators"], _forge_history(valid))},
         (False, "does not check out", None)),
        ("absent", "a permit that does not exist: the node says 404 and proves its absence",
         {"permit_id": ABSENT, "answer": None, "absence": raw["absent"].hex()},
         (True, "3 of 4", False)),
        ("absent-but-present", "the node says 404 for a permit that exists",
         {"answer": None, "absence": raw["present"].hex()}, (False, "does not exist", None)),
        ("after-validator-change", "a chain whose set changed at height 1: the answer at "
         "height 10 is certified by the new set, proven from genesis by the change history",
         changed, (True, "height 10", True)),
        ("validator-change-left-out", "as above, but the node leaves the change out of the "
         "validator history", {**changed, "validators": empty_history},
         (False, "names a validator set other than", None)),
        ("non-canonical", "the answer's bytes are not canonical msgpack",
         {"answer": "cc05"}, (False, "canonical", None)),
    ]  # fmt: skip
    return [
        vector(name, what, raw, **fields, expect=expect) for name, what, fields, expect in table
    ]


def block_vectors(raw: dict[str, bytes]) -> list[dict[str, Any]]:
    """A block answer (the blocks page), whole and tampered: what lightclient/blocks.py checks."""
    block = raw["block"]
    table: list[tuple[str, str, Tamper | None, tuple[bool, str, None]]] = [
        ("block-valid", "block 1 with its two permit applications", None, (True, "3 of 4", None)),
        ("block-tx-changed", "a transaction's payload changed", _change_tx,
         (False, "tx_root does not match", None)),
        ("block-tx-left-out", "a transaction left out", _drop_tx,
         (False, "its header says 2", None)),
        ("block-bad-signature", "a certificate signature with a flipped bit", flip_signature,
         (False, "bad signature", None)),
    ]  # fmt: skip
    return [
        vector(name, what, raw, kind="block", permit_id=None, expect=expect,
               answer=block.hex() if change is None else tampered(block, change))
        for name, what, change, expect in table
    ]  # fmt: skip


def _forge_history(valid: bytes) -> Tamper:
    """Replace the validators answer's history with a change made from ``valid``'s header."""
    source = decode(valid)

    def change(answer: dict[str, Any]) -> None:
        holder = copy.deepcopy(source)
        _forged_change(holder)
        answer["history"] = holder["history"]

    return change


def consistency_vectors(raw: dict[str, bytes]) -> list[dict[str, Any]]:
    """The checkpoints page: today's log extends a checkpoint's (the log of block 1, two
    transactions), or does not."""
    old_root = decode(raw["block"])["block"]["header"]["log_root"].hex()
    other_root = "11" * 32
    table: list[tuple[str, str, dict[str, Any], tuple[bool, str, None]]] = [
        ("consistency-valid", "today's log extends the checkpoint of block 1",
         {"old_size": 2, "old_root": old_root}, (True, "3 of 4", None)),
        ("consistency-rewritten", "the checkpoint's log root is not a prefix of today's log",
         {"old_size": 2, "old_root": other_root}, (False, "root mismatch", None)),
        ("consistency-other-size", "the proof is for another old size than the checkpoint's",
         {"old_size": 3, "old_root": old_root}, (False, "not between", None)),
    ]  # fmt: skip
    return [
        vector(name, what, raw, kind="consistency", permit_id=None, expect=expect,
               answer=raw["consistency"].hex(), **fields)
        for name, what, fields, expect in table
    ]  # fmt: skip


def write(directory: Path) -> list[Path]:
    raw = asyncio.run(served())
    written = []
    vectors = [*permit_vectors(raw), *block_vectors(raw), *consistency_vectors(raw)]
    for item in [*vectors, {"name": "encoding", **encoding_vectors()}]:
        path = directory / f"{item['name']}.json"
        path.write_text(json.dumps(item, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    DIR.mkdir(parents=True, exist_ok=True)
    for p in write(DIR):
        sys.stdout.write(f"{p}\n")
