"""Bulk record sync: stream records in, write them at the vendor's rate, account for each one."""
