"""Hooks: one per vendor, each holding its connection, auth and API contract."""
