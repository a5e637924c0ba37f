"""A founding organisation's join request: who it is, its keys, its validator, signed.

An agency makes its keys on its own machine and sends only this file (public keys and
signatures) to the coordinator who assembles the genesis. The request's *body* is the
canonical map ``{chain_id, organisation, validator?}`` (the organisation as in genesis:
id, name, kind, city, members with their roles; the validator: name, public key, p2p
address). Two kinds of signature cover it:

* ``possession``: the validator key signs the body (purpose ``POSSESSION``), so nobody
  can put a validator key they do not hold into genesis under their name;
* ``signatures``: every admin member signs ``{body, possession}`` (purpose
  ``JOIN_REQUEST``): the organisation vouches for the whole request, and each admin
  key proves its holder has it.

Both are bound to the chain id: a request made for one network is void for another.
The TLS binding of the validator is its key alone: a node's TLS certificate is issued
by its validator key (docs/formats.md §9) and may be rotated without telling anyone,
so pinning a certificate fingerprint here would only go stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import Value, encode
from ledger.errors import DecodeError, LedgerError, ValidationError
from ledger.genesis import Organisation, org_to_json
from ledger.tx import check_chain_id

FORMAT_VERSION = 1
MAX_REQUEST_BYTES = 1024 * 1024
MAX_ADMINS = 16


class JoinRequestError(LedgerError):
    code = "join_request"


@dataclass(frozen=True, slots=True)
class JoinValidator:
    """The validator a founding organisation will run."""

    name: str
    public_key: bytes
    p2p: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 64:
            raise ValidationError("a validator name is 1..64 characters")
        check_p2p(self.p2p)

    def to_obj(self) -> dict[str, Value]:
        return {"name": self.name, "p2p": self.p2p, "public_key": self.public_key}


@dataclass(frozen=True)
class JoinRequest:
    chain_id: str
    organisation: Organisation
    validator: JoinValidator | None
    possession: bytes  # the validator key's signature of the body; b"" without a validator
    signatures: tuple[tuple[bytes, bytes], ...]  # (admin public key, signature)

    def body(self) -> bytes:
        """The canonical bytes the validator key signs."""
        obj: dict[str, Value] = {
            "chain_id": self.chain_id,
            "organisation": self.organisation.to_obj(),
        }
        if self.validator is not None:
            obj["validator"] = self.validator.to_obj()
        return encode(obj)

    def signed_part(self) -> bytes:
        """The canonical bytes every admin key signs: the body and the possession proof."""
        return encode({"body": self.body(), "possession": self.possession})

    def admins(self) -> list[bytes]:
        return [m.public_key for m in self.organisation.members if "admin" in m.roles]

    def verify(self) -> None:
        """Raise :class:`JoinRequestError` (one line) unless every signature holds."""
        org = self.organisation.id
        admins = self.admins()
        if not admins:
            raise JoinRequestError(f"join request of {org}: no member has the admin role")
        if sorted(admins) != sorted(k for k, _ in self.signatures):
            raise JoinRequestError(f"join request of {org}: every admin must sign, and only they")
        if self.validator is not None:
            if self.validator.public_key in {m.public_key for m in self.organisation.members}:
                raise JoinRequestError(f"join request of {org}: the validator key is a member key")
            if not is_valid_signature(
                self.validator.public_key,
                Purpose.POSSESSION,
                self.chain_id,
                self.body(),
                self.possession,
            ):
                raise JoinRequestError(
                    f"join request of {org}: the validator key's proof of possession "
                    "does not verify"
                )
        signed = self.signed_part()
        for key, sig in self.signatures:
            if not is_valid_signature(key, Purpose.JOIN_REQUEST, self.chain_id, signed, sig):
                raise JoinRequestError(
                    f"join request of {org}: the signature of admin key {key.hex()[:16]}… "
                    "does not verify (the request was changed after signing?)"
                )

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "cityledger_join_request": FORMAT_VERSION,
            "chain_id": self.chain_id,
            "organisation": org_to_json(self.organisation),
        }
        if self.validator is not None:
            v = self.validator
            doc["validator"] = {
                "name": v.name,
                "public_key": v.public_key.hex(),
                "p2p": v.p2p,
                "possession": self.possession.hex(),
            }
        doc["signatures"] = [
            {"public_key": k.hex(), "signature": s.hex()} for k, s in self.signatures
        ]
        return json.dumps(doc, indent=2) + "\n"


def make_join_request(
    chain_id: str,
    organisation: Organisation,
    validator: tuple[str, PrivateKey, str] | None,
    admin_keys: list[PrivateKey],
) -> JoinRequest:
    """A signed request; ``validator`` is (name, key, p2p address) or None."""
    check_chain_id(chain_id)
    v = (
        None
        if validator is None
        else JoinValidator(validator[0], validator[1].public_key, validator[2])
    )
    unsigned = JoinRequest(chain_id, organisation, v, b"", ())
    possession = b""
    if validator is not None:
        possession = validator[1].sign(Purpose.POSSESSION, chain_id, unsigned.body())
    with_proof = JoinRequest(chain_id, organisation, v, possession, ())
    signed = with_proof.signed_part()
    sigs = tuple((k.public_key, k.sign(Purpose.JOIN_REQUEST, chain_id, signed)) for k in admin_keys)
    request = JoinRequest(chain_id, organisation, v, possession, sigs)
    request.verify()
    return request


def check_p2p(address: str) -> str:
    """``host:port`` with a port 1..65535 and a host of printable characters."""
    host, sep, port = address.rpartition(":")
    ok = bool(sep and host) and port.isdigit() and 1 <= int(port) <= 65535
    if not ok or len(host) > 253 or any(not c.isprintable() or c.isspace() for c in host):
        raise ValidationError(f"p2p address {address!r} is not host:port")
    return address


def read_capped(path: str, limit: int, what: str) -> bytes:
    """The bytes of a small file someone sent us, never more than ``limit`` read; a
    one-line DecodeError naming ``what`` it should be otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise DecodeError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise DecodeError(f"{path}: a {what} is at most {limit} bytes")
    return raw


def load_join_request(path: str) -> JoinRequest:
    """Read (at most 1 MiB) and parse a join request file; signatures not yet checked."""
    raw = read_capped(path, MAX_REQUEST_BYTES, "join request")
    try:
        return join_request_from_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DecodeError(f"{path} is not UTF-8 text") from None
    except DecodeError as exc:
        raise DecodeError(f"{path}: {exc}") from None


def join_request_from_json(text: str) -> JoinRequest:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("cityledger_join_request") != FORMAT_VERSION:
        raise DecodeError(f"not a CityLedger join request (version {FORMAT_VERSION})")
    try:
        signatures = doc["signatures"]
        if not isinstance(signatures, list) or len(signatures) > MAX_ADMINS:
            raise DecodeError(f"signatures must be a list of at most {MAX_ADMINS}")
        validator, possession = _validator(doc.get("validator"))
        return JoinRequest(
            check_chain_id(doc["chain_id"]),
            _organisation(doc["organisation"]),
            validator,
            possession,
            tuple((_hex(s["public_key"], 32), _hex(s["signature"], 64)) for s in signatures),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, LedgerError):
            raise DecodeError(str(exc)) from None
        raise DecodeError(f"malformed join request: {type(exc).__name__}: {exc}") from None


def _organisation(o: Any) -> Organisation:
    members = []
    for m in o["members"]:
        roles = sorted(m["roles"])
        if len(set(roles)) != len(roles):
            raise ValidationError(f"member {m['name']!r} lists a role twice")
        members.append({"public_key": _hex(m["public_key"], 32), "roles": roles, "name": m["name"]})
    obj = {"id": o["id"], "name": o["name"], "kind": o["kind"], "city": o["city"]}
    return Organisation.from_obj({**obj, "members": members})


def _validator(v: Any) -> tuple[JoinValidator | None, bytes]:
    if v is None:
        return None, b""
    if not isinstance(v["name"], str) or not isinstance(v["p2p"], str):
        raise ValidationError("the validator's name and p2p address must be strings")
    return JoinValidator(v["name"], _hex(v["public_key"], 32), v["p2p"]), _hex(v["possession"], 64)


def _hex(text: Any, size: int) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != size:
        raise ValidationError(f"expected {size} bytes of hex, got {len(raw)}")
    return raw
