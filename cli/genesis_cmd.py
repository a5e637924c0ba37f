"""``cityledger genesis request|verify-request|assemble|sign|add-signature|verify``:
found a network.

Each agency makes its keys on its own machine (``request``: a node key and an admin
key, plus any member keys, mode 0600, never printed) and sends only its signed join
request. A coordinator checks the requests and assembles a draft (``assemble``);
every founding organisation signs the draft's hash with its admin key (``sign``, in
place or, in parallel, into a file the coordinator adds: cli/genesis_sign_cmd.py);
``verify`` shows the hash, who signed and who has not, and refuses a genesis nobody
could govern or run. ``node init`` and ``node start`` make the same checks. The steps,
as two agencies on two hosts do them, are in docs/operations.md ("Founding a network").
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from cli.genesis_sign_cmd import add_signature, sign
from cli.keys_cmd import _new_passphrase, load_key
from cli.options import existing_file_option
from cli.output import console, fail, print_json
from contracts.identity import ORG_KIND_ROLES
from devnet.demo_keys import public_demo_keys
from ledger.crypto import PrivateKey
from ledger.founding import GenesisFile
from ledger.founding_assemble import assemble
from ledger.founding_checks import (
    MIN_VALIDATORS_KEY,
    FoundingReport,
    check_genesis_file,
    founding_report,
)
from ledger.genesis import Member, Organisation
from ledger.join_request import JoinRequest, check_p2p, load_join_request, make_join_request
from ledger.keyfile import make_private_dir, write_key_file
from ledger.tx import check_chain_id


def _say(text: str) -> None:
    """One line as it is (keys and hashes are not wrapped, nor coloured as numbers)."""
    console.print(text, soft_wrap=True, highlight=False)


@click.group()
def genesis() -> None:
    """Found a network: join requests, a draft genesis, the founders' signatures."""


def _key(path: str, passphrase: str | None) -> tuple[PrivateKey, bool]:
    """The key at ``path``, made there (mode 0600) if absent; whether it is new."""
    if os.path.exists(path):
        return load_key(path), False
    key = PrivateKey.generate()
    write_key_file(path, key, passphrase)
    return key, True


def _parse_member(text: str) -> tuple[str, tuple[str, ...]]:
    name, sep, roles = text.partition("=")
    if not sep or not name or not roles:
        raise click.BadParameter(f"{text!r} is not NAME=ROLE[,ROLE...]", param_hint="--member")
    return name, tuple(sorted(set(roles.split(","))))


@genesis.command("request")
@click.option("--chain-id", required=True, help="The network's chain id (agreed beforehand).")
@click.option("--org", "org_id", required=True, help="Organisation id, e.g. busan-customs.")
@click.option("--name", required=True, help="The organisation's full name.")
@click.option("--kind", default="agency", show_default=True, help="agency, carrier, trader, …")
@click.option("--city", required=True)
@click.option("--p2p", default=None, help="host:port where this agency's node listens.")
@click.option("--no-validator", is_flag=True, help="Join without running a validator.")
@click.option("--validator-name", default=None, help="Default: the organisation id.")
@click.option("--member", "members", multiple=True, help="NAME=ROLE[,ROLE]: another member.")
@click.option("--home", required=True, type=click.Path(file_okay=False), help="Where keys live.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Request to write.")
@click.option("--no-passphrase", is_flag=True, help="Store new keys unencrypted.")
def request(**opts: Any) -> None:
    """Make this agency's keys in --home (if absent) and write its signed join request.

    Keys: <home>/node_key.json (the validator), <home>/keys/<org>-admin.json and
    <home>/keys/<org>-<member>.json; only public keys leave the machine."""
    if opts["no_validator"] == (opts["p2p"] is not None):
        fail("give --p2p HOST:PORT for the validator, or --no-validator")
    if os.path.exists(opts["out"]):
        fail(f"{opts['out']} already exists; refusing to overwrite it")
    home, org_id = opts["home"], opts["org_id"]
    specs = [("admin", ("admin",)), *(_parse_member(m) for m in opts["members"])]
    _check_before_keys(opts, specs)
    make_private_dir(home)
    make_private_dir(os.path.join(home, "keys"))
    passphrase = _new_passphrase(opts["no_passphrase"])
    members, admins = [], []
    for name, roles in specs:
        key, _ = _key(os.path.join(home, "keys", f"{org_id}-{name}.json"), passphrase)
        members.append(Member(key.public_key, roles, name))
        if "admin" in roles:
            admins.append(key)
    org = Organisation(org_id, opts["name"], opts["kind"], opts["city"], tuple(members))
    validator = None
    if not opts["no_validator"]:
        node_key, _ = _key(os.path.join(home, "node_key.json"), passphrase)
        validator = (opts["validator_name"] or org_id, node_key, opts["p2p"])
    req = make_join_request(opts["chain_id"], org, validator, admins)
    with open(opts["out"], "x", encoding="utf-8") as f:
        f.write(req.to_json())
    _say(f"wrote {opts['out']}: send it to the coordinator (it holds no private key)")
    _show_request(req)


def _check_before_keys(opts: dict[str, Any], specs: list[tuple[str, tuple[str, ...]]]) -> None:
    """Refuse bad input before any key is made (a refusal changes nothing)."""
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        fail("a member name is given twice (the admin is named 'admin')")
    check_chain_id(opts["chain_id"])
    if opts["p2p"] is not None:
        check_p2p(opts["p2p"])
    placeholders = tuple(
        Member(bytes([i + 1]) * 32, roles, name) for i, (name, roles) in enumerate(specs)
    )
    Organisation(opts["org_id"], opts["name"], opts["kind"], opts["city"], placeholders)


def checked_genesis_file(path: str) -> GenesisFile:
    """The genesis file at ``path`` if it can found (or run) a network; else one line
    and exit 1 (``node init``, ``node start``)."""
    file = GenesisFile.load(path)
    check_genesis_file(file, public_demo_keys(), ORG_KIND_ROLES)
    return file


def _show_request(req: JoinRequest) -> None:
    org = req.organisation
    _say(f"organisation [bold]{org.id}[/] ({org.kind}, {org.city}) for {req.chain_id}")
    for m in org.members:
        _say(f"  member {m.name}: {m.public_key.hex()}  roles {', '.join(m.roles)}")
    if req.validator is not None:
        v = req.validator
        _say(f"  validator {v.name}: {v.public_key.hex()}  p2p {v.p2p}")


@genesis.command("verify-request")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def verify_request(path: str) -> None:
    """Check a join request's signatures (the admins' and the validator key's)."""
    req = load_join_request(path)
    req.verify()
    _say(f"[green]{path}: every signature verifies[/]")
    _show_request(req)


@genesis.command("assemble")
@click.argument("requests", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--chain-id", required=True)
@click.option("--time-ms", type=int, default=None, help="Genesis time (default: now).")
@click.option("--min-validators", type=int, default=None, help="app.min_validators (default 4).")
@existing_file_option("--app", "app_path", required=False, help_text="JSON map for genesis app.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Draft to write.")
def assemble_cmd(
    requests: tuple[str, ...],
    chain_id: str,
    time_ms: int | None,
    min_validators: int | None,
    app_path: str | None,
    out: str,
) -> None:
    """Check every join request and write the draft genesis (no signatures yet)."""
    if os.path.exists(out):
        fail(f"{out} already exists; refusing to overwrite it")
    app = _app(app_path)
    if min_validators is not None:
        app[MIN_VALIDATORS_KEY] = min_validators
    loaded = [(path, load_join_request(path)) for path in requests]
    when = int(time.time() * 1000) if time_ms is None else time_ms
    draft = assemble(loaded, chain_id, when, app)
    draft.save(out)
    _say(
        f"wrote {out}: {len(draft.genesis.organisations)} organisations, "
        f"{len(draft.genesis.validators)} validators"
    )
    _say(f"genesis hash: [bold]{draft.genesis.hash.hex()}[/]")
    _say("each founding organisation now checks it and runs `cityledger genesis sign`")


def _app(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            app = json.load(f)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    if not isinstance(app, dict):
        fail(f"{path} must hold a JSON object")
    return app


genesis.add_command(sign)
genesis.add_command(add_signature)


@genesis.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(path: str, as_json: bool) -> None:
    """The genesis hash, who signed and who has not; refuses one that could not run."""
    report = founding_report(GenesisFile.load(path), public_demo_keys(), ORG_KIND_ROLES)
    if as_json:
        print_json(_report_json(report))
    else:
        _show_report(report)
    if report.problems:
        fail(f"genesis refused: {report.problems[0]}")


def _report_json(report: FoundingReport) -> dict[str, Any]:
    g = report.genesis
    return {
        "chain_id": g.chain_id,
        "hash": g.hash,
        "devnet": g.devnet,
        "validators": [
            {"name": v.name, "org": g.org_of_validator(v.public_key), "public_key": v.public_key}
            for v in g.validators.validators
        ],
        "signed": [{"org": s.org, "public_key": s.public_key} for s in report.signed],
        "unsigned": list(report.unsigned),
        "problems": list(report.problems),
    }


def _show_report(report: FoundingReport) -> None:
    g = report.genesis
    _say(f"chain [bold]{g.chain_id}[/]{'  (devnet)' if g.devnet else ''}")
    _say(f"genesis hash: [bold]{g.hash.hex()}[/]")
    for v in g.validators.validators:
        _say(f"  validator {v.name} ({g.org_of_validator(v.public_key) or '-'})")
    for s in report.signed:
        _say(f"  [green]signed[/]   {s.org} (admin key {s.public_key.hex()[:16]}…)")
    for org in report.unsigned:
        _say(f"  [yellow]unsigned[/] {org}")
    if not report.problems:
        _say("[green]this genesis can found the network[/]")
