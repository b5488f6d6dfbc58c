"""Validation messages read ``<record>: <field>: <reason> (got <value>)``: no pydantic prefix, the
refused value shown (cut at 100 characters), the entry inside ``custom`` named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_crm.errors import CrmValidationError
from airflow_provider_crm.models.kaiten import CustomerReplacement
from airflow_provider_crm.models.kustomer import KObjectCreate, KObjectUpdate
from airflow_provider_crm.models.microbase import CustomerUpdate
from airflow_provider_crm.models.validation import VALUE_EXCERPT_LIMIT, validate_model


def refused(model: type[BaseModel], data: dict[str, Any], record: str = "KObject 'o-1'") -> CrmValidationError:
    with pytest.raises(CrmValidationError) as caught:
        validate_model(model, data, record=record)
    return caught.value


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            KObjectCreate,
            {"title": "t", "custom": {"totalNum": "12.5", "noteStr": "fine"}},
            "KObject 'o-1': custom.totalNum: must be a number, got str (got '12.5')",
        ),
        (
            KObjectCreate,
            {"title": "t", "custom": {"giftBool": "yes"}},
            "KObject 'o-1': custom.giftBool: must be true or false, got str (got 'yes')",
        ),
        (KObjectCreate, {"title": 5}, "KObject 'o-1': title: Input should be a valid string (got 5)"),
        (KObjectUpdate, {"tags": ["a", "a"]}, "KObject 'o-1': tags: must not repeat an item (got ['a', 'a'])"),
        (KObjectUpdate, {"colour": "red"}, "KObject 'o-1': colour: Extra inputs are not permitted (got 'red')"),
        (
            CustomerUpdate,
            {"id": "HkhhuXESl", "status": "SLEEPING"},
            "KObject 'o-1': status: Input should be 'ACTIVE' or 'INACTIVE' (got 'SLEEPING')",
        ),
        (
            CustomerReplacement,
            {"name": ""},
            "KObject 'o-1': name: String should have at least 1 character (got '')",
        ),
    ],
)
def test_message_names_record_field_reason_and_value(model: type[BaseModel], data: dict, message: str) -> None:
    assert str(refused(model, data)) == message


def test_no_pydantic_prefix_and_every_problem_listed() -> None:
    error = refused(KObjectCreate, {"title": "", "custom": {"shippedAt": "yesterday"}, "icon": 7})
    text = str(error)
    assert "Value error" not in text and "Assertion failed" not in text
    assert text.count("; ") == 2, text
    assert "custom.shippedAt: 'yesterday' is not an ISO 8601 date-time" in text
    assert "title: String should have at least 1 character (got '')" in text
    assert "icon: Input should be a valid string (got 7)" in text
    assert error.field == text.split(": ")[1] and error.record == "KObject 'o-1'"


def test_the_field_attribute_stays_the_model_field() -> None:
    """``.field`` names the model field (callers group by it); the message names the entry in it."""
    error = refused(KObjectUpdate, {"custom": {"totalNum": "12"}})
    assert error.field == "custom"
    assert "custom.totalNum: " in str(error)


def test_long_values_are_cut_at_100_characters() -> None:
    long_text = "".join(str(n % 10) for n in range(5000))
    error = refused(KObjectUpdate, {"custom": {"noteStr": long_text}})
    text = str(error)
    shown = text.split("(got ", 1)[1]
    assert shown.startswith("'" + long_text[: VALUE_EXCERPT_LIMIT - 1] + "…")
    assert "more characters]" in shown
    assert len(text) < 400, text


def test_a_missing_field_shows_no_value() -> None:
    """For a missing field pydantic's input is the whole record: it is not shown."""
    error = refused(KObjectCreate, {"description": "secret-looking record data"})
    assert str(error) == "KObject 'o-1': title: Field required"


def test_a_value_already_in_the_reason_is_not_repeated() -> None:
    error = refused(KObjectUpdate, {"custom": {"siteUrl": "javascript:alert(1)"}})
    assert str(error) == "KObject 'o-1': custom.siteUrl: must be an http(s) URL, got 'javascript:alert(1)'"


def test_a_wrong_key_shows_no_value() -> None:
    error = refused(KObjectUpdate, {"custom": {"colour": "red"}})
    assert str(error).startswith("KObject 'o-1': custom.colour: has no known type suffix; names must end in")
    assert "(got" not in str(error)


def test_secrets_in_values_are_masked() -> None:
    """A secret templated into a payload (``{{ conn.x.password }}``) is masked as in task logs."""
    from airflow_provider_crm._compat import mask_secret

    secret = "tok-3f9a81c2d4e5b6a7"
    mask_secret(secret)
    error = refused(KObjectUpdate, {"custom": {"totalNum": f"Bearer {secret}"}})
    assert secret not in str(error) and "(got 'Bearer ***')" in str(error)
    by_name = refused(KObjectUpdate, {"custom": {"apiPasswordNum": "hunter2-b7c1"}})
    assert "hunter2" not in str(by_name)
    assert "custom.apiPasswordNum: must be a number, got str (got '***')" in str(by_name)
