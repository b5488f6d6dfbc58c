"""Kustomer's documented requests and answers, against our hook (replayed) and our sandbox (live).

Each sample in ``tests/contracts/kustomer/`` is one example from Kustomer's own material. The hook
must read the documented answer into the right result or typed error, sending the documented
request once; the sandbox, asked the same request, must answer with the same status and shape.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_crm import errors
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.sandbox import Sandbox
from tests.conftest import use_connection
from tests.contracts.replay import ReplayServer
from tests.contracts.samples import Sample, canned, load
from tests.contracts.shape import shape_mismatches

SAMPLES = load("kustomer")
CONN_ID = "kustomer_contract"
TOKEN = "contract-token"
TIMEOUT = 5


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
        timeout=TIMEOUT,
    )

    assert response.status_code == sample.status, response.text
    assert shape_mismatches(sample.body, response.json(), ignore=frozenset(plan.get("ignore", ()))) == []
    if response.ok and request["method"] in ("POST", "PUT"):
        data = response.json()["data"]
        held = sandbox.state("kustomer").get(path.split("/")[3], data["id"])
        assert held is not None
        sent_custom = request["body"].get("custom", {})
        assert {key: held["custom"].get(key) for key in sent_custom} == sent_custom, "the write reached the state"
