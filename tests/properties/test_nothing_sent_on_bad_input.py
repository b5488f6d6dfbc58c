"""Through the hooks, against the sandbox: a validation error means no request reached the server."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_crm.errors import CrmError, CrmValidationError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.sandbox import Sandbox
from tests.properties.test_hostile_input import hostile_ids, values

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def outcome(sandbox: Sandbox, vendor: str, call) -> None:
    sandbox.reset(vendor)
    try:
        call()
    except CrmValidationError:
        assert sandbox.journal(vendor) == [], "a validation error must come before any request"
    except CrmError:
        pass  # the vendor refused it (e.g. 404): a clean, typed error


@settings(max_examples=40, suppress_health_check=FIXTURES_OK)
@given(klass=hostile_ids, title=values, custom=values, external_id=values)
def test_kustomer(sandbox: Sandbox, kustomer_conn: str, klass, title, custom, external_id) -> None:
    hook = KustomerHook()
    outcome(
        sandbox, "kustomer", lambda: hook.create_kobject(klass, title=title, custom=custom, external_id=external_id)
    )


@settings(max_examples=40, suppress_health_check=FIXTURES_OK)
@given(slug=hostile_ids, name=values, domain=values)
def test_kaiten(sandbox: Sandbox, kaiten_conn: str, slug, name, domain) -> None:
    hook = KaitenHook()
    outcome(sandbox, "kaiten", lambda: hook.merge_customer(slug, name=name, domain=domain))


@settings(max_examples=40, suppress_health_check=FIXTURES_OK)
@given(customer_id=values, email=values, status=values, tags=values)
def test_microbase(sandbox: Sandbox, microbase_conn: str, customer_id, email, status, tags) -> None:
    hook = MicroBaseHook()
    outcome(sandbox, "microbase", lambda: hook.update_customer(customer_id, email=email, status=status, tags=tags))


@settings(max_examples=40, suppress_health_check=FIXTURES_OK)
@given(order_id=hostile_ids, properties=values, id_property=st.one_of(st.none(), values))
def test_hubspot(sandbox: Sandbox, hubspot_conn: str, order_id, properties, id_property) -> None:
    hook = HubSpotHook()
    outcome(sandbox, "hubspot", lambda: hook.update_order(order_id, properties, id_property))
