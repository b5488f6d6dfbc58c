"""The Kaiten emulator: the Core API's customer endpoints with Kaiten's scopes and problem+json errors."""
