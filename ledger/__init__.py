"""CityLedger ledger package."""
