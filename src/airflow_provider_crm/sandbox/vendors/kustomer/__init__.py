"""The Kustomer emulator: KObjects with Kustomer's validation, optimistic locking and errors."""
