"""CityLedger cli package."""
