"""Pieces two or more vendor emulators share: the app contract, bearer auth, the locked store, ids, rate limits."""
