"""CityLedger contracts package."""
