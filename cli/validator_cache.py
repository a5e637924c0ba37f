"""The chain of certified validator-set changes a CLI needs to check answers after any
number of changes with the genesis file alone: fetched from the node, verified
(:mod:`lightclient.validator_history`), and cached per chain under the CLI's cache
directory (``$CITYLEDGER_CACHE``, default ``~/.cache/cityledger``), so that a later
node cannot take a change back. At most ``MAX_CACHED_CHAINS`` chains are kept."""

from __future__ import annotations

import os
from pathlib import Path

from cli.client import NodeClient, NodeError
from ledger.encoding import Value, decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from lightclient.errors import VerificationError
from lightclient.validator_history import (
    MAX_CHANGES,
    ValidatorHistory,
    known_history,
    remember,
    verify_history,
)

MAX_CACHED_CHAINS = 16
MAX_PAGES = 10


def cache_dir() -> Path:
    return Path(os.environ.get("CITYLEDGER_CACHE") or Path.home() / ".cache" / "cityledger")


def cache_file(genesis: Genesis) -> Path:
    return cache_dir() / f"validators-{genesis.hash.hex()[:32]}.msgpack"


def load_cached(genesis: Genesis) -> ValidatorHistory:
    """The cached history of this chain, verified again (a damaged file is ignored)."""
    path = cache_file(genesis)
    try:
        items = decode(path.read_bytes())
        return remember(verify_history(items, genesis))
    except (OSError, LedgerError, VerificationError):
        return known_history(genesis)


def fetch_history(client: NodeClient, genesis: Genesis) -> ValidatorHistory:
    """The cached history extended by what the node adds, verified and cached again.
    A node that contradicts the cached history is refused (VerificationError)."""
    history = load_cached(genesis)
    items: list[Value] = list(history.to_obj())
    after = history.changes[-1].height if history.changes else 0
    for _ in range(MAX_PAGES):
        try:
            answer = client.get("/v1/validators", {"after": after})
        except NodeError:
            break  # a node that serves no history: the cached one stands
        page = answer.get("history", [])
        if not isinstance(page, list) or not page or len(items) + len(page) > MAX_CHANGES:
            break
        items.extend(page)
        last = page[-1]
        height = last.get("height") if isinstance(last, dict) else None
        if not isinstance(height, int) or height + 1 <= after:
            raise VerificationError("the node's validator history does not move forward")
        after = height + 1
    if len(items) == len(history.changes):
        return history
    longer = remember(verify_history(items, genesis))
    _store(genesis, longer)
    return longer


def _store(genesis: Genesis, history: ValidatorHistory) -> None:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = cache_file(genesis).with_suffix(".tmp")
        tmp.write_bytes(encode(history.to_obj()))
        tmp.replace(cache_file(genesis))
        cached = sorted(directory.glob("validators-*.msgpack"), key=lambda p: p.stat().st_mtime)
        for old in cached[:-MAX_CACHED_CHAINS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs a refetch
