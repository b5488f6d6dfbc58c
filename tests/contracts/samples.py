"""Request/response samples copied from the vendors' own docs, specs and SDKs.

Each ``tests/contracts/<vendor>/<name>.json`` file holds one documented example::

    {
      "source": "https://developers.hubspot.com/... (or owner/repo:path@ref)",
      "note": "what the sample shows, and anything we had to fill in",
      "request": {"method": "PATCH", "path": "/crm/v3/objects/orders/123",
                  "query": {"idProperty": "..."}, "body": {...}},
      "response": {"status": 200, "headers": {...}, "body": {...} | "text"},
      "hook": {...}      # what the vendor's test expects our hook to make of it
    }

``request`` and ``response`` are the vendor's, as documented (ids and values as in the docs);
``hook`` is ours: the call to make and the result or typed error it must give. ``source`` is
required: a sample without one proves nothing about the vendor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.contracts.replay import Canned

HERE = Path(__file__).resolve().parent
SANDBOX_TIMEOUT = 10
"""Seconds a contract test waits for the sandbox's answer."""


@dataclass(frozen=True)
class Sample:
    name: str
    source: str
    request: dict[str, Any]
    response: dict[str, Any]
    hook: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    sandbox: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return int(self.response["status"])

    @property
    def body(self) -> Any:
        return self.response.get("body")


def load(vendor: str) -> list[Sample]:
    """Every sample of ``vendor``, sorted by file name; fails loudly on a malformed file."""
    samples = []
    for path in sorted((HERE / vendor).glob("*.json")):
        raw = json.loads(path.read_text())
        unknown = set(raw) - {"source", "note", "request", "response", "hook", "sandbox"}
        assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
        assert str(raw.get("source", "")).strip(), f"{path.name}: every sample names its source"
        assert "status" in raw.get("response", {}), f"{path.name}: response.status is required"
        samples.append(
            Sample(
                name=path.stem,
                source=raw["source"],
                request=raw.get("request", {}),
                response=raw["response"],
                hook=raw.get("hook", {}),
                note=raw.get("note", ""),
                sandbox=raw.get("sandbox", {}),
            )
        )
    assert samples, f"no contract samples for {vendor}"
    return samples


def canned(sample: Sample) -> Canned:
    """The sample's response, ready for :class:`~tests.contracts.replay.ReplayServer`."""
    return Canned(sample.status, sample.body, sample.response.get("headers"))


def by_name(samples: list[Sample]) -> dict[str, Sample]:
    """Samples by file name, for tests that replay several answers in a row."""
    return {sample.name: sample for sample in samples}
