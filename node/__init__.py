"""CityLedger node package."""
