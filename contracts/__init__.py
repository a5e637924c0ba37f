"""CityLedger contracts package."""

from ledger import compiled as _compiled

_compiled.activate()  # before any compiled module of this package loads (ledger/compiled.py)
