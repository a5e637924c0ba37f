"""``cityledger tx ...``: one subcommand per contract action, signed and submitted.

Every action command takes ``--key`` (the signing member key), ``--node``, and
optionally ``--wait`` (return after commit with the receipt; with ``--genesis``
the receipt's certificate and proofs are checked), ``--nonce`` (otherwise the
CLI asks the node for the sender's next nonce and steps over its own pending
transactions) and ``--json``. The payload is checked locally with the contract's
own parser before anything is signed, so a typo is refused with the same
message the node would give. ``tx send KIND --file payload.json`` sends any
payload (JSON; the byte fields ``public_key``, ``meter_key``, ``sha256`` and
``signature`` are hex).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from cli.client import NodeClient, genesis_option, node_option, system_ms
from cli.inputs import CONTAINERS
from cli.keys_cmd import key_option, load_key, public_key_of
from cli.options import json_option
from cli.output import console, err_console, fail, print_json
from cli.precheck import precheck_problem
from cli.query_cmd import report_receipt, wait_for_receipt
from cli.render import parse_time
from cli.verified_reads import Reads
from contracts import state_keys as sk
from contracts.energy import sign_reading
from contracts.errors import ContractError
from contracts.registry import HANDLERS
from ledger.encoding import Value, decode
from ledger.genesis import Genesis
from ledger.join_request import MAX_REQUEST_BYTES, join_request_from_json
from ledger.tx import Transaction
from lightclient.records import verify_state_answer

BYTES_FIELDS = frozenset({"public_key", "meter_key", "sha256", "signature"})
Build = Callable[[dict[str, Any], "Sender"], dict[str, Value]]
Extra = Callable[[Transaction], dict[str, str]]  # more to report about a sent transaction


@dataclass
class Sender:
    """The common options of every action command, and what they resolve to."""

    key_path: str
    node: str
    genesis_path: str | None
    wait: bool
    timeout: float
    nonce: int | None
    as_json: bool
    force: bool = False  # send even when the pre-check says it would fail

    def __post_init__(self) -> None:
        self.key = load_key(self.key_path)
        self.client = NodeClient(self.node, key=self.key)  # signed reads: its own receipts
        self.genesis = Genesis.load(self.genesis_path) if self.genesis_path else None
        self.reads = None if self.genesis is None else Reads(self.client, self.genesis)

    @property
    def chain_id(self) -> str:
        return self.client.chain_id


def next_nonce(sender: Sender) -> int:
    """The sender's next nonce from the proven state (proof checked when the genesis is given)."""
    key = sk.nonce_key(sender.key.public_key)
    answer = sender.client.get(f"/v1/state/{key.hex()}")
    if sender.genesis is not None:
        _, value = verify_state_answer(answer, sender.genesis, key)
        return 0 if value is None else int(value)
    raw = answer.get("value")
    return 0 if raw is None else int(decode(raw))


# What the sender can do about a refusal that is about who they are, not what they sent.
REFUSAL_REMEDIES = {
    "unknown_sender": "this key is not registered: your organisation's admin registers member "
    "keys (cityledger tx identity register-member); a new organisation is registered by an "
    "admin of a founding agency (tx identity register-org)",
    "revoked": "this key was revoked by its organisation's admin: ask them for a new one",
}


def refusal_text(code: object, message: object) -> str:
    text = f"the node refused the transaction: {message} ({code})"
    remedy = REFUSAL_REMEDIES.get(str(code))
    return text if remedy is None else f"{text}; {remedy}"


def _say_busy(code: str, wait_s: float) -> None:
    """A node said "not now": say so on stderr while the client waits to send again."""
    err_console.print(
        f"the node is busy ({code}): sending again in {wait_s:.2f} s", highlight=False
    )


def send(sender: Sender, kind: str, payload: dict[str, Value], extra: Extra | None = None) -> None:
    """Check, sign, submit; with --wait follow the transaction to its receipt.

    ``extra``: more fields to report (e.g. a governance proposal's id), in the JSON
    output and as ``name: value`` lines."""
    try:
        HANDLERS[kind].parse(payload)
    except ContractError as exc:
        fail(f"not sent, the payload is wrong: {exc.message}")
    except KeyError:
        fail(f"unknown transaction kind {kind!r}; known: {', '.join(sorted(HANDLERS))}")
    if not sender.force:
        problem = precheck_problem(sender.client, sender.reads, kind, payload)
        if problem is not None:
            fail(f"not sent: {problem}; use --force to send anyway")
    explicit = sender.nonce is not None
    nonce = sender.nonce if sender.nonce is not None else next_nonce(sender)
    sender.client.on_wait = _say_busy
    for _ in range(256):
        tx = Transaction.create(sender.key, sender.chain_id, kind, nonce, payload)
        result = sender.client.submit([tx])[0]
        if result.get("status") == "pending":
            break
        error = result.get("error") or {}
        if (
            error.get("code") == "bad_nonce"
            and "pending" in error.get("message", "")
            and not explicit
        ):
            nonce += 1  # our own earlier transaction is still waiting: take the next nonce
            continue
        fail(refusal_text(error.get("code"), error.get("message")))
    else:
        fail("could not find a free nonce: 256 of this key's transactions are pending")
    out: dict[str, Any] = {
        "hash": tx.hash,
        "kind": kind,
        "nonce": nonce,
        "sender": tx.sender,
        "status": "pending",
    }
    more = extra(tx) if extra is not None else {}
    out |= more
    if not sender.wait:
        if sender.as_json:
            print_json(out)
        else:
            console.print(f"submitted {kind} (nonce {nonce}): {tx.hash.hex()}")
            console.print(f"follow it with: cityledger tx show {tx.hash.hex()}")
    else:
        answer = wait_for_receipt(sender.client, tx.hash, sender.timeout)
        report_receipt(answer, tx.hash, sender.reads, sender.as_json, out)  # exits if failed
    if not sender.as_json:
        for name, value in more.items():
            console.print(f"{name.replace('_', ' ')}: {value}")


# --- the action commands, from one table ------------------------------------------------------

_COMMON: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    key_option(required=True, help_text="The member key that signs."),
    node_option(),
    genesis_option(required=False),
    click.option("--wait/--no-wait", default=False, help="Return after commit, with the receipt."),
    click.option("--timeout", default=30.0, show_default=True, help="Seconds --wait waits."),
    click.option("--nonce", type=int, default=None, help="Use this nonce (default: ask the node)."),
    click.option(
        "--force",
        is_flag=True,
        help="Send even if the record it names is missing or in the wrong state (pre-check).",
    ),
    json_option(),
]

HELP = {
    "--place": "UN/LOCODE, e.g. NLRTM.",
    "--origin": "UN/LOCODE.",
    "--destination": "UN/LOCODE.",
    "--time": "Event time (ms or ISO 8601; default: the block time).",
    "--goods": "'HS;description;quantity;unit;value;currency' (repeat).",
    "--container": "ISO 6346 container number (repeat).",
    "--file": "The payload as JSON (- for stdin); byte fields as hex.",
    "--event": "gate_in, gate_out, loaded, departed, arrived or discharged.",
    "--type": "Document or permit type (see docs/contracts.md).",
    "--document": "The document file: its SHA-256 goes on the ledger.",
    "--licence": "Import licence (permit id) for restricted goods.",
    "--hs-code": "HS prefix an import licence covers (repeat).",
    "--result": "pass, fail or partial.",
    "--meter-key": "The meter's key file (only its public key is read).",
    "--meter": "The meter's key file: the meter signs its reading.",
    "--interval": "Settlement interval start (ms or ISO 8601).",
    "--quantity": "Wh.",
    "--price": "Minor units per kWh.",
    "--amount": "Minor units.",
    "--key-file": "The member's key file (only its public key is read).",
    "--public-key": "The member's public key (hex).",
    "--role": "Role to grant (repeat).",
    "--request": "A join request (`genesis request`): register its organisation.",
}


def _params(spec: str) -> list[Any]:
    """``SHIPMENT`` argument, ``--to`` required, ``--time?`` optional, ``--role*`` repeatable,
    ``--amount#`` integer, ``--file@`` a file (marks combine: ``--file@?``)."""
    params = []
    for token in spec.split():
        if not token.startswith("--"):
            params.append(click.argument(token.lower()))
            continue
        name = token.rstrip("?*#@")
        marks = token[len(name) :]
        kw: dict[str, Any] = {"required": not set(marks) & {"?", "*"}, "help": HELP.get(name)}
        if "*" in marks:
            kw["multiple"] = True
        if "#" in marks:
            kw["type"] = int
        if "@" in marks:
            kw["type"] = click.File("rb" if name == "--document" else "r")
        if name == "--container":
            kw["callback"] = CONTAINERS
        dest = {
            "--file": "payload_file",
            "--container": "containers",
            "--role": "roles",
            "--hs-code": "hs_codes",
            "--meter-key": "key_file",
        }.get(name)
        params.append(click.option(name, *([dest] if dest else []), **kw))
    return params


def _command(
    group: click.Group, name: str, kind: str, spec: str, build: Build, extra: Extra | None = None
) -> None:
    def callback(
        key_path: str, node: str, genesis_path: str | None, wait: bool, timeout: float,
        nonce: int | None, force: bool, as_json: bool, **fields: Any,
    ) -> None:  # fmt: skip
        sender = Sender(key_path, node, genesis_path, wait, timeout, nonce, as_json, force)
        send(sender, fields.get("kind") or kind, build(fields, sender), extra)

    for decorator in reversed([*_params(spec), *_COMMON]):
        callback = decorator(callback)
    if kind:
        help_text = f"{HANDLERS[kind].summary} ({kind})"
    else:
        help_text = "Send any transaction KIND (e.g. identity.register_org) with a JSON payload."
    group.add_command(click.command(name, help=help_text)(callback))


def _time(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _fields(**sources: Any) -> Build:
    """A payload of option values: ``field="option"``, ``field=T("option")`` (a time),
    ``field=V(constant)``; absent optional fields are left out."""

    def build(f: dict[str, Any], sender: Sender) -> dict[str, Value]:
        out = {}
        for name, source in sources.items():
            value = source(f, sender) if callable(source) else f[source]
            if value is not None and value != ():
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    return build


def T(option: str) -> Callable[[dict[str, Any], Sender], int | None]:
    return lambda f, _: _time(f[option])


def V(value: Value) -> Callable[[dict[str, Any], Sender], Value]:
    return lambda f, _: value


def payload_from_json(text: str, what: str) -> dict[str, Value]:
    """A payload map from JSON; the byte fields (:data:`BYTES_FIELDS`) are given as hex."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        fail(f"{what} is not valid JSON: {exc}")
    if not isinstance(doc, dict):
        fail(f"{what} must hold a JSON object")
    out: dict[str, Value] = _hex_to_bytes(doc, what)
    return out


def _hex_to_bytes(value: Any, what: str, name: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _hex_to_bytes(v, what, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_to_bytes(v, what, name) for v in value]
    if name in BYTES_FIELDS and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            fail(f"{what}: {name} must be hex")
    if isinstance(value, float):
        fail(f"{what}: {name or 'a value'} is a fraction; amounts are integers in minor units")
    return value


def _from_file(f: dict[str, Any], _: Sender) -> dict[str, Value]:
    return payload_from_json(f["payload_file"].read(), f["payload_file"].name)


def _org(f: dict[str, Any], sender: Sender) -> dict[str, Value]:
    """register-org's payload: from ``--file``, or the organisation of a join request
    (``--request``: what a joining agency sends; its signatures are checked first)."""
    if (f["payload_file"] is None) == (f["request"] is None):
        fail("give exactly one of --file PAYLOAD.json or --request REQUEST.json")
    if f["payload_file"] is not None:
        return _from_file(f, sender)
    text = f["request"].read(MAX_REQUEST_BYTES + 1)
    if len(text) > MAX_REQUEST_BYTES:
        fail(f"{f['request'].name}: a join request is at most {MAX_REQUEST_BYTES} bytes")
    request = join_request_from_json(text)
    request.verify()
    if request.chain_id != sender.chain_id:
        fail(f"{f['request'].name} is a request for chain {request.chain_id!r}, not this one")
    payload = request.organisation.to_obj()
    assert isinstance(payload, dict)
    return payload


def _declare(f: dict[str, Any], sender: Sender) -> dict[str, Value]:
    if f["payload_file"] is not None:
        return _from_file(f, sender)
    needed = ("id", "consignor", "consignee", "declarant", "origin", "destination", "goods")
    missing = [f"--{n}" for n in needed if not f[n]]
    if missing:
        fail(f"give --file, or all of: {', '.join(missing)}")
    goods = []
    for line in f["goods"]:
        parts = line.split(";")
        if len(parts) != 6 or not parts[2].isdigit() or not parts[4].isdigit():
            fail(f"--goods {line!r}: expected 'HS;description;quantity;unit;value;currency'")
        hs, description, quantity, unit, value, currency = parts
        goods.append({"hs_code": hs, "description": description, "quantity": int(quantity),
                      "unit": unit, "value": int(value), "currency": currency})  # fmt: skip
    payload = {n: f[n] for n in needed[:-1]} | {"goods": goods, "containers": list(f["containers"])}
    return payload | ({"time_ms": _time(f["time"])} if f["time"] else {})


def _sha256(f: dict[str, Any], _: Sender) -> bytes:
    if (f["sha256"] is None) == (f["document"] is None):
        fail("give exactly one of --document FILE (hashed here) or --sha256 HEX")
    if f["document"] is not None:
        return hashlib.sha256(f["document"].read()).digest()
    try:
        return bytes.fromhex(f["sha256"])
    except ValueError:
        fail("--sha256 must be hex")


def _reading(f: dict[str, Any], sender: Sender) -> dict[str, Value]:
    meter, start = load_key(f["meter"]), _time(f["interval"])
    assert start is not None
    signature = sign_reading(meter, sender.chain_id, start, f["produced"], f["consumed"])
    payload = {"meter_key": meter.public_key, "interval_start_ms": start}
    return payload | {
        "produced_wh": f["produced"],
        "consumed_wh": f["consumed"],
        "signature": signature,
    }


def _member_key(f: dict[str, Any], _: Sender) -> bytes:
    if (f["public_key"] is None) == (f["key_file"] is None):
        fail("give exactly one of --public-key HEX or --key-file FILE")
    if f["key_file"] is not None:
        return public_key_of(f["key_file"])
    try:
        return bytes.fromhex(f["public_key"])
    except ValueError:
        fail("--public-key must be hex")


def _meter_key(f: dict[str, Any], _: Sender) -> bytes:
    return public_key_of(f["key_file"])


def _now_if_none(option: str) -> Callable[[dict[str, Any], Sender], int]:
    return lambda f, _: _time(f[option]) or system_ms()


_SHIPMENT_TIME = {"shipment_id": "shipment", "time_ms": T("time")}
_MEMBER = "--public-key? --key-file?"
# (group, command, kind, options, payload)
ACTIONS: list[tuple[str, str, str, str, Build]] = [
    ("", "send", "", "KIND --file@", _from_file),
    ("shipment", "declare", "shipment.declare",
     "--file@? --id? --consignor? --consignee? --declarant? --origin? --destination? --goods* "
     "--container* --time?", _declare),
    ("shipment", "confirm", "shipment.confirm_party", "SHIPMENT --time?",
     _fields(**_SHIPMENT_TIME)),
    ("shipment", "document", "shipment.attach_document",
     "SHIPMENT --type --document@? --sha256? --uri?",
     _fields(shipment_id="shipment", type="type", sha256=_sha256, uri="uri")),
    ("shipment handoff", "offer", "shipment.offer_custody", "SHIPMENT --to --time?",
     _fields(to="to", **_SHIPMENT_TIME)),
    ("shipment handoff", "accept", "shipment.accept_custody", "SHIPMENT --time?",
     _fields(**_SHIPMENT_TIME)),
    ("shipment", "milestone", "shipment.milestone", "SHIPMENT --event --place --time?",
     _fields(shipment_id="shipment", event="event", place="place", time_ms=_now_if_none("time"))),
    ("shipment", "deliver", "shipment.deliver", "SHIPMENT --place --time?",
     _fields(place="place", **_SHIPMENT_TIME)),
    ("customs", "clear", "shipment.customs_decision", "SHIPMENT --reason --licence? --time?",
     _fields(decision=V("clear"), reason="reason", licence_id="licence", **_SHIPMENT_TIME)),
    *[("customs", d, "shipment.customs_decision", "SHIPMENT --reason --time?",
       _fields(decision=V(d), reason="reason", **_SHIPMENT_TIME))
      for d in ("hold", "inspect", "release", "seize")],
    ("permit", "apply", "permit.apply", "--id --type --address --description --hs-code*",
     _fields(id="id", type="type", address="address", description="description",
             hs_codes="hs_codes")),
    *[("permit", a, f"permit.{a}", "PERMIT --note?", _fields(permit_id="permit", note="note"))
      for a in ("review", "approve")],
    *[("permit", a, f"permit.{a}", "PERMIT --reason", _fields(permit_id="permit", reason="reason"))
      for a in ("deny", "suspend", "reinstate", "revoke")],
    ("permit", "issue", "permit.issue", "PERMIT --valid-from --valid-until --conditions?",
     _fields(permit_id="permit", valid_from=T("valid_from"), valid_until=T("valid_until"),
             conditions="conditions")),
    ("permit", "renew", "permit.renew", "PERMIT --valid-until",
     _fields(permit_id="permit", valid_until=T("valid_until"))),
    ("permit", "inspect", "permit.inspect", "PERMIT --result --notes? --time?",
     _fields(permit_id="permit", result="result", notes="notes", time_ms=T("time"))),
    ("energy", "register-meter", "energy.register_meter",
     "--meter-key --owner --name --active-from?",
     _fields(meter_key=_meter_key, owner="owner", name="name",
             active_from_ms=T("active_from"))),
    ("energy", "revoke-meter", "energy.revoke_meter", "--meter-key --reason",
     _fields(meter_key=_meter_key, reason="reason")),
    ("energy", "reading", "energy.submit_reading", "--meter --interval --produced# --consumed#",
     _reading),
    ("energy", "credit", "energy.credit_balance", "--account --amount# --reference",
     _fields(account="account", amount="amount", reference="reference")),
    *[("energy", side, "energy.place_order", "--interval --quantity# --price#",
       _fields(interval_start_ms=T("interval"), side=V(side), quantity_wh="quantity",
               price_per_kwh="price"))
      for side in ("offer", "bid")],
    ("energy", "cancel", "energy.cancel_order", "--order", _fields(order_id="order")),
    ("energy", "settle", "energy.settle", "--interval",
     _fields(interval_start_ms=T("interval"))),
    ("identity", "register-org", "identity.register_org", "--file@? --request@?", _org),
    ("identity", "register-member", "identity.register_member", f"{_MEMBER} --name --role*",
     _fields(public_key=_member_key, name="name", roles="roles")),
    ("identity", "revoke-member", "identity.revoke_member", f"{_MEMBER} --reason",
     _fields(public_key=_member_key, reason="reason")),
]  # fmt: skip

GROUPS = {
    "shipment": "Shipment (consignment) actions.",
    "shipment handoff": "Custody transfer: the holder offers, the receiver accepts.",
    "customs": "Customs decisions on a shipment (customs role).",
    "permit": "Permit actions (apply, review, approve, issue, inspect, renew, …).",
    "energy": "Energy market actions (meters, readings, orders, settlement).",
    "identity": "Organisations and member keys (admins).",
}


@click.group()
def tx() -> None:
    """Sign and submit transactions (one subcommand per action); show receipts."""


def _register() -> None:
    groups: dict[str, click.Group] = {"": tx}
    for path, help_text in GROUPS.items():
        parent, _, name = path.rpartition(" ")
        groups[path] = click.Group(name, help=help_text)
        groups[parent].add_command(groups[path])
    for group, name, kind, spec, build in ACTIONS:
        _command(groups[group], name, kind, spec, build)


_register()
