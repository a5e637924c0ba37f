"""Secondary-index keys of the contracts (not authenticated: a node rebuilds them).

Every key starts with :data:`ledger.storage.keys.INDEX` and then names its index;
the value is the state key of the record found (so a client can ask for its
proof). Components never contain ``/`` (id patterns forbid it) except the
address, which is ended by a NUL byte instead. Intervals and trade numbers are
zero-padded decimals so byte order is numeric order.

==============================================================  ===================
``shipment-container/<ISO 6346 number>/<shipment id>``          shipments by container
``shipment-party/<org id>/<shipment id>``                       by party (consignor,
                                                                consignee, declarant,
                                                                every custody holder)
``shipment-status/<status>/<shipment id>``                      by stage and by customs
                                                                status
``permit-holder/<org id>/<permit id>``                          permits by holder
``permit-address/<normalised address>\\0<permit id>``            permits by address
``trade-account/<org id>/<start ms:020>/<n:010>``               trades by account and
                                                                interval
==============================================================  ===================
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.storage.keys import INDEX


@dataclass(frozen=True, slots=True)
class IdIndex:
    """An index whose entries are ``<family><name>/<record id>``: the ids filed under a name."""

    family: bytes

    def prefix(self, name: str) -> bytes:
        """The prefix every entry filed under ``name`` starts with."""
        return self.family + name.encode() + b"/"

    def key(self, name: str, record_id: str) -> bytes:
        """The entry of ``record_id`` filed under ``name``."""
        return self.prefix(name) + record_id.encode()


SHIPMENT_CONTAINER = IdIndex(INDEX + b"shipment-container/")
SHIPMENT_PARTY = IdIndex(INDEX + b"shipment-party/")
SHIPMENT_STATUS = IdIndex(INDEX + b"shipment-status/")
PERMIT_HOLDER = IdIndex(INDEX + b"permit-holder/")
PERMIT_ADDRESS = INDEX + b"permit-address/"
TRADE_ACCOUNT = INDEX + b"trade-account/"


def normalise_address(address: str) -> str:
    """Case- and space-insensitive form of an address, used as its index key."""
    return " ".join(address.lower().split())


def permit_address_prefix(address: str, *, exact: bool = True) -> bytes:
    """Prefix of one address (``exact``) or of every address starting with ``address``."""
    base = PERMIT_ADDRESS + normalise_address(address).encode()
    return base + b"\x00" if exact else base


def permit_address_key(address: str, permit_id: str) -> bytes:
    return permit_address_prefix(address) + permit_id.encode()


def trade_account_prefix(org_id: str, interval_start_ms: int | None = None) -> bytes:
    prefix = TRADE_ACCOUNT + org_id.encode() + b"/"
    if interval_start_ms is not None:
        prefix += f"{interval_start_ms:020d}/".encode()
    return prefix


def trade_account_key(org_id: str, interval_start_ms: int, n: int) -> bytes:
    return trade_account_prefix(org_id, interval_start_ms) + f"{n:010d}".encode()


def last_component(key: bytes, prefix: bytes) -> str:
    """The id that ends an index key found under ``prefix``."""
    return key[len(prefix) :].rsplit(b"/", 1)[-1].rsplit(b"\x00", 1)[-1].decode()
