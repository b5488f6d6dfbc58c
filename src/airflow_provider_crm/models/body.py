"""The one way a request model becomes a JSON body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RequestBody(BaseModel):
    """A model sent as a JSON body: fields left ``None`` are not sent.

    Vendors read a missing field as "leave it alone" and some refuse an explicit ``null`` (Kaiten's
    body schema does); a ``null`` nested inside a value (e.g. Kustomer's ``custom``) is sent as is.
    """

    def to_body(self) -> dict[str, Any]:
        dumped = self.model_dump(by_alias=True, mode="json")
        return {key: value for key, value in dumped.items() if value is not None}
