"""The contract harness itself: shape comparison and the replay server must be able to fail."""

from __future__ import annotations

import requests

from tests.contracts.replay import Canned, ReplayServer
from tests.contracts.shape import shape_mismatches


def test_shape_reports_missing_keys_and_wrong_types() -> None:
    expected = {"id": "1", "properties": {"amount": "12"}, "results": [{"id": "a"}], "note": None}
    assert (
        shape_mismatches(expected, {"id": "2", "properties": {"amount": "3", "x": 1}, "results": [], "note": 4}) == []
    )
    assert shape_mismatches(expected, {"id": 2, "properties": {}, "results": [{"id": 1}]}) == [
        "$.id: expected string, got number",
        "$.properties.amount: missing",
        "$.results[0].id: expected string, got number",
        "$.note: missing",
    ]


def test_replay_answers_in_order_and_records_requests() -> None:
    with ReplayServer(
        Canned(429, {"errorType": "RATE_LIMIT"}, {"Retry-After": "1"}), Canned(200, {"ok": True})
    ) as server:
        first = requests.post(f"{server.url}/a/b?x=1", json={"k": "v"}, timeout=5)
        second = requests.get(f"{server.url}/c", timeout=5)
        third = requests.get(f"{server.url}/c", timeout=5)
    assert (first.status_code, first.headers["Retry-After"], first.json()) == (429, "1", {"errorType": "RATE_LIMIT"})
    assert second.json() == third.json() == {"ok": True}
    assert [(r.method, r.path, r.query, r.body) for r in server.received] == [
        ("POST", "/a/b", {"x": "1"}, {"k": "v"}),
        ("GET", "/c", {}, None),
        ("GET", "/c", {}, None),
    ]
