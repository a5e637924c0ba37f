"""CityLedger ledger package."""

from ledger import compiled as _compiled

_compiled.activate()  # before any compiled module loads: stale or unwanted ones stay pure
