"""CachedToken on a fake clock and a fake issuer: reuse, renewal before expiry, invalidation, masking."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_crm.hooks import tokens
from airflow_provider_crm.hooks.tokens import EXPIRY_MARGIN_SECONDS, CachedToken, IssuedToken


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """Hands out ``token-1``, ``token-2``, ... with a fixed lifetime; counts the calls."""

    def __init__(self, expires_in: float | None = 3600.0) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []

    def __call__(self) -> IssuedToken:
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        return IssuedToken(token, self.expires_in)


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(tokens, "mask_secret", seen.append)
    return seen


def test_the_token_is_fetched_on_first_use_and_then_reused(masked: list[str]) -> None:
    clock, issuer = Clock(), Issuer()
    token = CachedToken(issuer, clock=clock)
    assert issuer.issued == [], "nothing is fetched before the token is needed"
    assert [token() for _ in range(3)] == ["token-1"] * 3
    clock.now += 3600 - EXPIRY_MARGIN_SECONDS - 1
    assert token() == "token-1"
    assert token.fetches == 1


def test_the_token_is_renewed_shortly_before_it_expires(masked: list[str]) -> None:
    clock, issuer = Clock(), Issuer()
    token = CachedToken(issuer, clock=clock)
    token()
    clock.now += 3600 - EXPIRY_MARGIN_SECONDS
    assert token() == "token-2"
    assert token() == "token-2"
    assert token.fetches == 2


def test_a_short_lived_token_is_renewed_a_tenth_of_its_life_early(masked: list[str]) -> None:
    clock, issuer = Clock(), Issuer(expires_in=100.0)
    token = CachedToken(issuer, clock=clock)
    token()
    clock.now += 89.9
    assert token() == "token-1"
    clock.now += 0.1
    assert token() == "token-2"


def test_a_token_without_an_expiry_is_kept(masked: list[str]) -> None:
    clock, issuer = Clock(), Issuer(expires_in=None)
    token = CachedToken(issuer, clock=clock)
    token()
    clock.now += 10 * 365 * 86400
    assert token() == "token-1"


def test_invalidate_makes_the_next_use_fetch_a_new_token(masked: list[str]) -> None:
    token = CachedToken(Issuer(), clock=Clock())
    token()
    token.invalidate()
    assert token() == "token-2"


def test_every_fetched_token_is_masked_before_use(masked: list[str]) -> None:
    clock = Clock()
    token = CachedToken(Issuer(expires_in=100.0), clock=clock)
    token()
    clock.now += 100
    token()
    assert masked == ["token-1", "token-2"]
    assert "token" not in repr(token).replace("CachedToken", "")


def test_the_module_clock_is_read_when_none_is_given(masked: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(tokens, "monotonic", clock)
    token = CachedToken(Issuer(expires_in=100.0))
    token()
    clock.now += 95
    assert token() == "token-2"


def test_threads_sharing_a_token_fetch_it_once(masked: list[str]) -> None:
    issuer = Issuer()
    token = CachedToken(issuer, clock=Clock())
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        token()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issuer.issued == ["token-1"]
