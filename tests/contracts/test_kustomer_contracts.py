"""Kustomer's documented requests and answers, against our hook (replayed) and our sandbox (live).

Each sample in ``tests/contracts/kustomer/`` is one example from Kustomer's own material. The hook
must read the documented answer into the right result or typed error, sending the documented
request once; the sandbox, asked the same request, must answer with the same status and shape,
and with the documented values where Kustomer's examples fix them: a KObject's ``type`` is
``kobject.<klass>``, ``rev`` is the example's (0 for a new object), a JSON:API error's ``status``
is the HTTP status as a string. Where Kustomer is ambiguous (``type`` with or without the klass,
``status`` as string or number), the hook is replayed each variant of the documented answer.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from airflow_provider_crm import errors
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import Sandbox
from tests.conftest import use_connection
from tests.contracts.replay import Canned, ReplayServer
from tests.contracts.samples import SANDBOX_TIMEOUT, Sample, canned, load
from tests.contracts.shape import shape_mismatches

SAMPLES = [sample for sample in load("kustomer") if not sample.name.startswith("bulk-")]
"""Single-record samples; the bulk-job samples have their own tests (test_kustomer_bulk_contracts.py, tests/sandbox)."""
KOBJECT_SAMPLES = [sample for sample in SAMPLES if isinstance((sample.body or {}).get("data"), dict)]


def _documents_error_status(sample: Sample) -> bool:
    items = (sample.body or {}).get("errors") or []
    return sample.status >= 400 and bool(items) and all("status" in item for item in items)


JSONAPI_ERROR_SAMPLES = [sample for sample in SAMPLES if _documents_error_status(sample)]
CONN_ID = "kustomer_contract"
TOKEN = "contract-token"


def _call(hook: KustomerHook, plan: dict[str, Any]) -> Any:
    method = getattr(hook, plan["call"])
    return method(*plan.get("args", []), **plan.get("kwargs", {}))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_hook_reads_the_documented_answer(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = sample.hook
    with ReplayServer(canned(sample)) as server:
        use_connection(monkeypatch, CONN_ID, {"conn_type": "kustomer", "host": server.url, "password": TOKEN})
        hook = KustomerHook(kustomer_conn_id=CONN_ID)
        if "raises" in plan:
            with pytest.raises(getattr(errors, plan["raises"])) as caught:
                _call(hook, plan)
            error = caught.value
            assert isinstance(error, errors.CrmApiError)
            assert error.status == sample.status
            if "code" in plan:
                assert error.code == plan["code"]
            assert plan.get("message_contains", "") in str(error)
        else:
            kobject = _call(hook, plan)
            assert kobject is not None
            assert {key: getattr(kobject, key) for key in plan["expect"]} == plan["expect"]
        hook.close()

    assert len(server.received) == 1, "one request, not retried"
    sent = server.received[0]
    assert sent.headers.get("Authorization") == f"Bearer {TOKEN}"
    if plan["sends_request"]:
        expected = sample.request
        assert (sent.method, sent.path, sent.body) == (expected["method"], expected["path"], expected.get("body"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_sandbox_answers_in_the_documented_shape(sample: Sample, sandbox: Sandbox) -> None:
    plan = sample.sandbox
    request = plan.get("request", sample.request)
    path = request["path"]
    seed = plan.get("seed")
    if seed:
        stored = sandbox.kustomer.seed(seed["klass"], seed["fields"], rev=seed.get("rev"))
        if "kobject_id" in plan:
            path = path.replace(plan["kobject_id"], stored["id"])
    token = plan.get("token", sandbox.token("kustomer"))

    response = requests.request(
        request["method"],
        sandbox.base_url("kustomer") + path,
        json=request.get("body"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=SANDBOX_TIMEOUT,
    )

    assert response.status_code == sample.status, response.text
    answer = response.json()
    assert shape_mismatches(sample.body, answer, ignore=frozenset(plan.get("ignore", ()))) == []
    if sample in KOBJECT_SAMPLES:
        documented, given = kobject_values(sample.body["data"]), kobject_values(answer["data"])
        assert documented["type"] == f"kobject.{documented['klass']}", "the rule holds in Kustomer's example"
        assert given["type"] == f"kobject.{given['klass']}"
        assert given["rev"] == documented["rev"], "rev as in Kustomer's example (0 for a new object)"
    if sample in JSONAPI_ERROR_SAMPLES:
        assert [item["status"] for item in answer["errors"]] == [str(sample.status)] * len(answer["errors"])
    if response.ok and request["method"] in ("POST", "PUT"):
        data = response.json()["data"]
        held = sandbox.state("kustomer").get(path.split("/")[3], data["id"])
        assert held is not None
        sent_custom = request["body"].get("custom", {})
        assert {key: held["custom"].get(key) for key in sent_custom} == sent_custom, "the write reached the state"


def kobject_values(data: dict[str, Any]) -> dict[str, Any]:
    """The values Kustomer's KObject examples fix, beyond their shape."""
    return {
        "type": data["type"],
        "klass": data["relationships"]["klass"]["data"]["id"],
        "rev": data["attributes"]["rev"],
    }


def _without_klass_relationship(body: dict[str, Any]) -> None:
    del body["data"]["relationships"]["klass"]


def _bare_type(body: dict[str, Any]) -> None:
    body["data"]["type"] = "kobject"


def _bare_type_and_no_klass_relationship(body: dict[str, Any]) -> None:
    _bare_type(body)
    _without_klass_relationship(body)


TYPE_VARIANTS = {
    # variant: (how the documented answer is changed, the klass the hook must read from it)
    "as_documented": (lambda body: None, "order"),
    "no_klass_relationship": (_without_klass_relationship, "order"),
    "bare_kobject_type": (_bare_type, "order"),
    "bare_type_no_relationship": (_bare_type_and_no_klass_relationship, None),
}


@pytest.mark.parametrize("variant", list(TYPE_VARIANTS))
@pytest.mark.parametrize("sample", KOBJECT_SAMPLES, ids=lambda sample: sample.name)
def test_hook_reads_type_with_or_without_the_klass(
    sample: Sample, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kustomer's examples write ``kobject.order``; the klass also travels in relationships. Either may be missing."""
    change, klass = TYPE_VARIANTS[variant]
    body = copy.deepcopy(sample.body)
    change(body)
    with ReplayServer(Canned(sample.status, body)) as server:
        use_connection(monkeypatch, CONN_ID, {"conn_type": "kustomer", "host": server.url, "password": TOKEN})
        hook = KustomerHook(kustomer_conn_id=CONN_ID)
        kobject = _call(hook, sample.hook)
        hook.close()
    assert (kobject.id, kobject.klass, kobject.rev) == (body["data"]["id"], klass, body["data"]["attributes"]["rev"])
    assert kobject.custom == body["data"]["attributes"]["custom"]
    assert len(server.received) == 1


STATUS_FORMS = {
    "as_documented": lambda item, status: item["status"],
    "string": lambda item, status: str(status),
    "number": lambda item, status: status,
    "absent": lambda item, status: None,
}


@pytest.mark.parametrize("form", list(STATUS_FORMS))
@pytest.mark.parametrize("sample", JSONAPI_ERROR_SAMPLES, ids=lambda sample: sample.name)
def test_hook_reads_error_status_as_string_or_number(
    sample: Sample, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kustomer's OpenAPI types ``errors[].status`` as a string; the kustomer-client SDK reads a number."""
    body = copy.deepcopy(sample.body)
    for item in body["errors"]:
        value = STATUS_FORMS[form](item, sample.status)
        if value is None:
            del item["status"]
        else:
            item["status"] = value
    with ReplayServer(Canned(sample.status, body)) as server:
        use_connection(monkeypatch, CONN_ID, {"conn_type": "kustomer", "host": server.url, "password": TOKEN})
        hook = KustomerHook(kustomer_conn_id=CONN_ID)
        with pytest.raises(getattr(errors, sample.hook["raises"])) as caught:
            _call(hook, sample.hook)
        hook.close()
    error = caught.value
    assert isinstance(error, errors.CrmApiError)
    assert (error.status, error.code, error.details) == (sample.status, body["errors"][0]["code"], body["errors"])
    assert body["errors"][0]["title"] in str(error)
    assert len(server.received) == 1, "one request, not retried"
