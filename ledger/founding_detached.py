"""A founding signature in a file of its own, so the founders sign the draft in parallel.

Passing one genesis file from agency to agency makes signing a sequence: each waits
for the one before it, and the last copy must travel back. Instead each agency signs
its own copy of the draft and sends back only its signature (``genesis sign --out``),
and the coordinator adds the signatures it receives in any order (``genesis
add-signature``). The detached file names the chain and the genesis hash it signs,
so a signature of an older draft is refused with both hashes shown, not as a bare
"bad signature". It holds no secret. docs/formats.md §7.3.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import DecodeError, ValidationError
from ledger.founding import FoundingSignature, GenesisFile, entry_from_json, entry_json
from ledger.genesis import Genesis
from ledger.join_request import read_capped

MAX_DETACHED_BYTES = 4096  # a few hundred bytes in practice; no reason to read more
FORMAT_KEY = "cityledger_genesis_signature"
_KEYS = frozenset({FORMAT_KEY, "chain_id", "genesis_hash", "org", "public_key", "signature"})


def detached_json(signature: FoundingSignature, genesis: Genesis) -> str:
    """The file ``genesis sign --out`` writes: the signature and what it signs."""
    doc: dict[str, Any] = {FORMAT_KEY: 1, "chain_id": genesis.chain_id}
    doc["genesis_hash"] = genesis.hash.hex()
    doc.update(entry_json(signature))
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def load_detached(path: str) -> tuple[str, bytes, FoundingSignature]:
    """(chain id, genesis hash, signature) of a detached signature file; not yet checked."""
    raw = read_capped(path, MAX_DETACHED_BYTES, "signature file")
    try:
        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or set(doc) != _KEYS or doc[FORMAT_KEY] != 1:
            raise ValueError(f"not a genesis signature file (keys: {', '.join(sorted(_KEYS))})")
        chain_id, hash_hex = doc["chain_id"], doc["genesis_hash"]
        if not isinstance(chain_id, str) or not isinstance(hash_hex, str):
            raise ValueError("chain_id and genesis_hash must be strings")
        genesis_hash = bytes.fromhex(hash_hex)
        if len(genesis_hash) != 32:
            raise ValueError("genesis_hash must be 32 bytes")
        return chain_id, genesis_hash, entry_from_json(FoundingSignature, doc)
    except (UnicodeDecodeError, ValueError, DecodeError) as exc:
        raise DecodeError(f"{path}: {exc}") from None


def add_detached(file: GenesisFile, paths: list[str]) -> tuple[GenesisFile, list[str]]:
    """``file`` with the signatures of ``paths`` added (each checked; the first bad one is
    refused with its file named, and then nothing is added); the organisations added."""
    g = file.genesis
    orgs: list[str] = []
    for path in paths:
        chain_id, genesis_hash, signature = load_detached(path)
        if (chain_id, genesis_hash) != (g.chain_id, g.hash):
            raise ValidationError(
                f"{path} signs genesis {genesis_hash.hex()[:16]}… of chain {chain_id!r}, "
                f"not this one ({g.hash.hex()[:16]}… of {g.chain_id!r}): sign the current draft"
            )
        try:
            file = file.with_signature(signature)
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc.message}") from None
        orgs.append(signature.org)
    return file, orgs
