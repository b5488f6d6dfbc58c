from __future__ import annotations

import pytest

from airflow_provider_crm.errors import CrmConfigurationError, CrmValidationError
from airflow_provider_crm.transport import Raw, api_path, normalise_base_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a/b", "a%2Fb"),
        ("%2F", "%252F"),
        ("x?y=1", "x%3Fy%3D1"),
        ("x#frag", "x%23frag"),
        ("line\nbreak", "line%0Abreak"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("...", "..."),
    ],
)
def test_each_segment_is_escaped_whole(value: str, expected: str) -> None:
    assert api_path("v1", "klasses", value) == f"/v1/klasses/{expected}"


@pytest.mark.parametrize("value", ["", "   ", ".", "..", None])
def test_unusable_ids_are_refused(value: object) -> None:
    with pytest.raises(CrmValidationError):
        api_path("v1", value)  # type: ignore[arg-type]


def test_raw_segments_are_kept() -> None:
    assert api_path("v1", Raw("externalId=a%2Fb")) == "/v1/externalId=a%2Fb"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.api.kustomerapp.com", "https://acme.api.kustomerapp.com"),
        ("https://acme.example/", "https://acme.example"),
        ("http://127.0.0.1:8080/kustomer/", "http://127.0.0.1:8080/kustomer"),
        ("http://localhost:3005", "http://localhost:3005"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_urls_are_normalised(raw: str, expected: str) -> None:
    assert normalise_base_url(raw, vendor="X") == expected


@pytest.mark.parametrize(
    "raw",
    ["http://api.example.com", "ftp://x.example", "", "https://user:pw@x.example", "https://x.example/?a=1"],
)
def test_unsafe_base_urls_are_refused(raw: str) -> None:
    with pytest.raises(CrmConfigurationError):
        normalise_base_url(raw, vendor="X")


def test_plain_http_to_remote_host_needs_explicit_opt_in() -> None:
    assert normalise_base_url("http://crm.internal", vendor="X", allow_insecure_http=True) == "http://crm.internal"
