"""The founding agencies' signatures of a genesis, and the genesis file that carries them.

Each founding organisation signs the genesis *hash* with one of its admin keys
(purpose ``GENESIS``: ``tag || chain id || genesis hash``). The signatures are made
after the body is final, so they are not part of the hashed body: the genesis JSON
file carries them in a top-level ``founding_signatures`` list beside the body's keys,
and the hash (block 1's ``prev_hash``) is the same with or without them. A body
changed after signing has another hash, so every earlier signature stops verifying.

The file may also carry ``peers``: each founding validator's p2p address, copied from
the join requests (:mod:`ledger.join_request`) so that ``node init`` can dial them.
Addresses are not hashed either: a validator's address may change, and a wrong one
only costs a failed dial (peer links are pinned to the validator keys, not to
addresses).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.errors import DecodeError, ValidationError
from ledger.genesis import Genesis, read_genesis_text

MAX_SIGNATURES = 10_000


@dataclass(frozen=True, slots=True)
class FoundingSignature:
    """One founding organisation's signature of the genesis hash by its admin key."""

    org: str
    public_key: bytes
    signature: bytes

    def verifies(self, genesis: Genesis) -> bool:
        """Whether this is a signature of exactly ``genesis``'s hash on its chain."""
        return is_valid_signature(
            self.public_key, Purpose.GENESIS, genesis.chain_id, genesis.hash, self.signature
        )


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a founding validator listens for peer links (from its join request)."""

    validator: str
    public_key: bytes
    p2p: str


Entry = TypeVar("Entry", FoundingSignature, Peer)
_SIZES = {"public_key": 32, "signature": 64}  # hex fields and their sizes in bytes


def entry_json(entry: FoundingSignature | Peer) -> dict[str, str]:
    """A signature or peer entry as the file shows it (bytes as hex)."""
    values = ((f.name, getattr(entry, f.name)) for f in fields(entry))
    return {name: v.hex() if isinstance(v, bytes) else v for name, v in values}


def entry_from_json(cls: type[Entry], doc: Any) -> Entry:
    """The entry of a JSON map: every field a string; hex fields of their exact size."""
    values: dict[str, Any] = {}
    try:
        for f in fields(cls):
            text = doc[f.name]
            if not isinstance(text, str):
                raise TypeError(f"{f.name} must be a string")
            values[f.name] = bytes.fromhex(text) if f.name in _SIZES else text
            if f.name in _SIZES and len(values[f.name]) != _SIZES[f.name]:
                raise ValueError(f"{f.name} must be {_SIZES[f.name]} bytes")
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(
            f"a {cls.__name__} entry of the genesis file is malformed: {exc}"
        ) from None
    return cls(**values)


@dataclass(frozen=True)
class GenesisFile:
    """A genesis file: the hashed body, the founding signatures, the founding peers."""

    genesis: Genesis
    signatures: tuple[FoundingSignature, ...] = ()
    peers: tuple[Peer, ...] = ()

    def to_json(self) -> str:
        doc = self.genesis.to_doc()
        doc["founding_signatures"] = [entry_json(s) for s in self.signatures]
        if self.peers:
            doc["peers"] = [entry_json(p) for p in self.peers]
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> GenesisFile:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise DecodeError(f"not a valid genesis file: {exc}") from None
        genesis = Genesis.from_doc(doc)
        sigs, peers = doc.get("founding_signatures", []), doc.get("peers", [])
        if not isinstance(sigs, list) or not isinstance(peers, list):
            raise DecodeError("founding_signatures and peers must be lists")
        if len(sigs) > MAX_SIGNATURES or len(peers) > MAX_SIGNATURES:
            raise DecodeError(f"more than {MAX_SIGNATURES} founding signatures or peers")
        return cls(
            genesis,
            tuple(entry_from_json(FoundingSignature, s) for s in sigs),
            tuple(entry_from_json(Peer, p) for p in peers),
        )

    @classmethod
    def load(cls, path: str) -> GenesisFile:
        return cls.from_json(read_genesis_text(path))

    def save(self, path: str) -> None:
        """Write the file whole (a temporary file renamed over ``path``)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(tmp, path)

    def signed_by(self, key: PrivateKey) -> GenesisFile:
        """This file with ``key``'s signature of the hash added (replacing an earlier
        one by the same key). The key must be an admin of a genesis organisation."""
        org = admin_org(self.genesis, key.public_key)
        if org is None:
            raise ValidationError(
                f"key {key.public_key.hex()[:16]}… is not an admin of any organisation "
                "in this genesis"
            )
        g = self.genesis
        new = FoundingSignature(org, key.public_key, key.sign(Purpose.GENESIS, g.chain_id, g.hash))
        return self.with_signature(new)

    def with_signature(self, signature: FoundingSignature) -> GenesisFile:
        """This file with ``signature`` added, if it is an admin's of the organisation it
        names over this hash (replacing an earlier one by the same key). Signatures are
        kept sorted by organisation and key, so the same signatures make the same file
        whichever order they were added in (``genesis add-signature``)."""
        if admin_org(self.genesis, signature.public_key) != signature.org:
            raise ValidationError(
                f"key {signature.public_key.hex()[:16]}… is not an admin of organisation "
                f"{signature.org!r} in this genesis"
            )
        if not signature.verifies(self.genesis):
            raise ValidationError(
                f"the signature by {signature.org} does not verify over this genesis hash"
            )
        kept = [s for s in self.signatures if s.public_key != signature.public_key]
        ordered = sorted([*kept, signature], key=lambda s: (s.org, s.public_key))
        return replace(self, signatures=tuple(ordered))


def admin_org(genesis: Genesis, public_key: bytes) -> str | None:
    """The organisation whose admin member ``public_key`` is, if any."""
    for org in genesis.organisations:
        for m in org.members:
            if m.public_key == public_key and "admin" in m.roles:
                return org.id
    return None
