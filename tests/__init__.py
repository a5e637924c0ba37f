"""CityLedger tests."""
