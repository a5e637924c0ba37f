"""The genesis document: chain id, validators, founding organisations, parameters.

Stored as JSON for people (keys as hex); identified by the SHA-256 of its
canonical msgpack form, which is also the ``prev_hash`` of block 1. The founding
agencies' signatures of that hash travel in the same JSON file but outside the
hashed body (:mod:`ledger.founding`): they are made after the body is final.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ledger.encoding import Value, digest, encode
from ledger.errors import DecodeError, ValidationError
from ledger.schema import (
    COUNT,
    PUBLIC_KEY,
    AnyMap,
    Bool,
    Choice,
    Described,
    List,
    Mapped,
    Nested,
    Str,
    described,
    wire,
)
from ledger.tx import CHAIN_ID, check_chain_id
from ledger.validators import MAX_VALIDATORS, VALIDATOR_LIST, Validator, ValidatorSet

ROLES = frozenset(
    {
        "admin",
        "customs",
        "port",
        "carrier",
        "trader",
        "permit_office",
        "inspector",
        "energy_regulator",
        "prosumer",
        "meter",
        "auditor",
    }
)
ORG_KINDS = frozenset({"agency", "carrier", "trader", "customs_broker", "prosumer"})
ORG_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ORG_ID = Str(max_len=64, pattern=ORG_ID_PATTERN)
"""An organisation id on the wire."""
MAX_ORGANISATIONS = 10_000
MAX_MEMBERS = 10_000


@described("member")
@dataclass(frozen=True, slots=True)
class Member(Described):
    """A member key of an organisation; its roles go on the wire sorted."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    roles: tuple[str, ...] = field(
        metadata=wire(List(Choice(ROLES), min_len=1, max_len=len(ROLES), sort=True))
    )
    name: str = field(metadata=wire(Str()))

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValidationError(f"member {self.name!r}: public key must be 32 bytes")
        unknown = set(self.roles) - ROLES
        if unknown or not self.roles:
            raise ValidationError(
                f"member {self.name!r}: unknown or missing roles {sorted(unknown)}"
            )


@described("organisation")
@dataclass(frozen=True, slots=True)
class Organisation(Described):
    id: str = field(metadata=wire(ORG_ID))
    name: str = field(metadata=wire(Str()))
    kind: str = field(metadata=wire(Choice(ORG_KINDS)))
    city: str = field(metadata=wire(Str()))
    members: tuple[Member, ...] = field(metadata=wire(List(Nested(Member), max_len=MAX_MEMBERS)))

    def __post_init__(self) -> None:
        if not ORG_ID_PATTERN.match(self.id):
            raise ValidationError(
                f"organisation id {self.id!r} must match {ORG_ID_PATTERN.pattern}"
            )
        if self.kind not in ORG_KINDS:
            raise ValidationError(
                f"organisation {self.id}: kind must be one of {sorted(ORG_KINDS)}"
            )


def _param(default: int) -> Any:
    """A consensus parameter: a non-negative integer."""
    return field(default=default, metadata=wire(COUNT))


@described("consensus")
@dataclass(frozen=True, slots=True)
class ConsensusParams(Described):
    """Round timeouts grow linearly: timeout(r) = base + r * delta (paper, §3 liveness)."""

    timeout_propose_ms: int = _param(1000)
    timeout_prevote_ms: int = _param(500)
    timeout_precommit_ms: int = _param(500)
    timeout_delta_ms: int = _param(250)
    max_block_txs: int = _param(2000)
    max_block_bytes: int = _param(4 * 1024 * 1024)
    min_block_interval_ms: int = _param(0)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValidationError(f"consensus.{name} must be a non-negative integer")


# What a new network is founded with (`founding_consensus`: the founding ceremony and the
# devnet write it into the genesis file), as against what a genesis file that leaves the
# field out means (the ConsensusParams default above, part of the format: never changed,
# or an existing network's genesis hash would change with the software). Four validators
# sharing two cores had proposals come 1.3-1.5 s into round 0; each height that failed
# for it cost 2.4-3.2 s more (docs/performance.md, "Rounds lost to a late proposal").
FOUNDING_TIMEOUT_PROPOSE_MS = 2000


def founding_consensus(**overrides: int) -> ConsensusParams:
    """The consensus parameters of a network founded today (``overrides`` win)."""
    return ConsensusParams(**{"timeout_propose_ms": FOUNDING_TIMEOUT_PROPOSE_MS, **overrides})


@described("validator_org")
@dataclass(frozen=True, slots=True)
class ValidatorOrg(Described):
    """The founding organisation that runs a genesis validator (from its join request)."""

    validator: bytes = field(metadata=wire(PUBLIC_KEY))
    org: str = field(metadata=wire(ORG_ID))


_VALIDATOR_SET = Mapped(VALIDATOR_LIST, ValidatorSet, lambda vs: vs.validators)


@described("genesis")
@dataclass(frozen=True)
class Genesis(Described):
    chain_id: str = field(metadata=wire(CHAIN_ID))
    genesis_time_ms: int = field(metadata=wire(COUNT))
    validators: ValidatorSet = field(metadata=wire(_VALIDATOR_SET))
    organisations: tuple[Organisation, ...] = field(
        metadata=wire(List(Nested(Organisation), max_len=MAX_ORGANISATIONS))
    )
    consensus: ConsensusParams = field(
        default_factory=ConsensusParams, metadata=wire(Nested(ConsensusParams))
    )
    app: dict[str, Value] = field(default_factory=dict, metadata=wire(AnyMap()))
    # Left out of the hashed map when false / empty, so older genesis hashes stand.
    devnet: bool = field(default=False, metadata=wire(Bool(), missing=False))
    validator_orgs: tuple[ValidatorOrg, ...] = field(
        default=(),
        metadata=wire(List(Nested(ValidatorOrg), max_len=MAX_VALIDATORS), missing=()),
    )

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        ids = [o.id for o in self.organisations]
        if len(set(ids)) != len(ids):
            raise ValidationError("genesis lists an organisation id twice")
        keys = [m.public_key for o in self.organisations for m in o.members]
        if len(set(keys)) != len(keys):
            raise ValidationError("genesis lists a member key in two places")
        if not isinstance(self.devnet, bool):
            raise ValidationError("genesis devnet must be true or false")
        _check_validator_orgs(self.validator_orgs, self.validators, set(ids))
        encode(self.app)  # must be canonical-encodable

    def org_of_validator(self, public_key: bytes) -> str | None:
        """The id of the organisation that runs the validator ``public_key``, if named."""
        for entry in self.validator_orgs:
            if entry.validator == public_key:
                return entry.org
        return None

    @property
    def hash(self) -> bytes:
        return digest(self.to_obj())

    # --- JSON file form ---------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), indent=2, sort_keys=False) + "\n"

    def to_doc(self) -> dict[str, Any]:
        """The JSON document (a dict) of this genesis: the hashed body only."""
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "devnet": self.devnet,
            "validators": [self._validator_json(v) for v in self.validators.validators],
            "organisations": [org_to_json(o) for o in self.organisations],
            "consensus": self.consensus.to_obj(),
            "app": self.app,
        }

    def _validator_json(self, v: Validator) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": v.name, "public_key": v.public_key.hex(), "power": v.power}
        org = self.org_of_validator(v.public_key)
        if org is not None:
            doc["org"] = org
        return doc

    @classmethod
    def from_json(cls, text: str) -> Genesis:
        try:
            doc = json.loads(text)
        except (ValueError, json.JSONDecodeError) as exc:
            raise DecodeError(f"not a valid genesis file: {exc}") from None
        return cls.from_doc(doc)

    @classmethod
    def from_doc(cls, doc: Any) -> Genesis:
        """The genesis of a parsed JSON document; top-level keys other than the body's
        (``founding_signatures``, ``peers``) are not read here."""
        try:
            validators = doc["validators"]
            return cls(
                chain_id=doc["chain_id"],
                genesis_time_ms=int(doc["genesis_time_ms"]),
                validators=ValidatorSet(
                    tuple(
                        Validator(v["name"], _hex32(v["public_key"]), int(v["power"]))
                        for v in validators
                    )
                ),
                organisations=tuple(org_from_json(o) for o in doc.get("organisations", [])),
                consensus=ConsensusParams(**doc.get("consensus", {})),
                app=doc.get("app", {}),
                devnet=_flag(doc.get("devnet", False)),
                validator_orgs=tuple(
                    ValidatorOrg(_hex32(v["public_key"]), v["org"])
                    for v in validators
                    if "org" in v
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise DecodeError(f"not a valid genesis file: {type(exc).__name__}: {exc}") from None

    @classmethod
    def load(cls, path: str) -> Genesis:
        return cls.from_json(read_genesis_text(path))


def read_genesis_text(path: str) -> str:
    """The text of the genesis file at ``path`` (a one-line DecodeError if unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise DecodeError(f"cannot read genesis file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DecodeError(f"genesis file {path} is not UTF-8 text") from None


def _hex32(text: Any) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValidationError(f"expected a 32-byte hex key, got {len(raw)} bytes")
    return raw


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"genesis devnet must be true or false, not {value!r}")
    return value


def _check_validator_orgs(
    entries: tuple[ValidatorOrg, ...], validators: ValidatorSet, org_ids: set[str]
) -> None:
    """Each entry names a genesis validator and organisation, in validator order (the
    order the JSON file shows them in, so the file gives back the same hash)."""
    order = {v.public_key: i for i, v in enumerate(validators.validators)}
    last = -1
    for entry in entries:
        where = order.get(entry.validator)
        if where is None:
            raise ValidationError(
                f"validator_orgs names {entry.validator.hex()[:16]}…, not a genesis validator"
            )
        if where <= last:
            raise ValidationError("validator_orgs must follow the validators' order, once each")
        if entry.org not in org_ids:
            raise ValidationError(
                f"a validator is run by {entry.org!r}, not a genesis organisation"
            )
        last = where


def org_to_json(o: Organisation) -> dict[str, Any]:
    """An organisation as the genesis (and a join request) shows it in JSON."""
    return {
        "id": o.id,
        "name": o.name,
        "kind": o.kind,
        "city": o.city,
        "members": [
            {"name": m.name, "public_key": m.public_key.hex(), "roles": list(m.roles)}
            for m in o.members
        ],
    }


def org_from_json(o: dict[str, Any]) -> Organisation:
    return Organisation(
        id=o["id"],
        name=o["name"],
        kind=o["kind"],
        city=o.get("city", ""),
        members=tuple(
            Member(_hex32(m["public_key"]), tuple(m["roles"]), m.get("name", ""))
            for m in o.get("members", [])
        ),
    )
