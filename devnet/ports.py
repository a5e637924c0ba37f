"""Before a devnet starts: are its ports free, and if not, who holds them?

A ``devnet up`` on ports another network holds would start nodes that die on the bind,
and then report the *other* network's heights as its own. So every address is tried
first (a bind with SO_REUSEADDR: a socket in TIME_WAIT does not count, a listener
does), and a busy API port is asked ``/v1/status`` to name the CityLedger chain behind
it, if any.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ledger.errors import LedgerError

SHOWN = 2  # busy addresses named in full; the rest are counted


class PortsBusy(LedgerError):
    """Some address a devnet needs is taken; the message says which and by whom."""


def wanted_addresses(entries: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(node, role, address) for each (node, p2p, api) of a devnet."""
    out = []
    for name, p2p, api in entries:
        out += [(name, "peer links", p2p), (name, "API", api)]
    return out


def is_free(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_free(
    wanted: list[tuple[str, str, str]],
    genesis_hash: str | None,
    status_of: Callable[[str], dict[str, Any] | None],
) -> None:
    """Raise :class:`PortsBusy` naming every busy address of ``wanted`` (owner, role,
    address) and what answers there; ``status_of(url)`` asks a CityLedger API."""
    problems = []
    for owner, role, address in wanted:
        if not is_free(address):
            holder = _holder(address, role, genesis_hash, status_of)
            problems.append((role != "API", f"{address} ({owner}'s {role}) is in use{holder}"))
    if problems:
        shown = [text for _, text in sorted(problems)[:SHOWN]]  # API ports first: they say who
        more = len(problems) - len(shown)
        raise PortsBusy(
            f"cannot start the devnet: {len(problems)} of its {len(wanted)} addresses "
            "are in use: "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
            + ". Stop whatever holds them (another devnet: `cityledger devnet down --home DIR`) "
            "or choose other ports with --base-port"
        )


def _holder(
    address: str,
    role: str,
    genesis_hash: str | None,
    status_of: Callable[[str], dict[str, Any] | None],
) -> str:
    if role != "API":
        return ""
    status = status_of(f"http://{address}")
    if status is None:
        return " by another program"
    theirs = str(status.get("genesis_hash", "?"))
    chain = status.get("chain_id", "?")
    if genesis_hash is not None and theirs == genesis_hash:
        return f" by a node of this very devnet (chain {chain}) that is not in its pid list"
    return f" by a CityLedger node of another chain ({chain}, genesis {theirs[:16]}…)"
