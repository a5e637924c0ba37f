"""CityLedger devnet package."""
