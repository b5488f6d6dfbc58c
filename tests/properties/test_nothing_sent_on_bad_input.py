"""Through the hooks, against the sandbox: bad input is refused before any request, good input is written.

Each example first seeds what the call addresses (the Kaiten slug, the MicroBase id, the HubSpot
order by its unique property), so every call the hook lets through can succeed. A vendor refusal
is then accepted only when what was sent fits the vendor's request rules (checked on the journal
with the sandbox's own validators) and only for what the hook cannot know: HubSpot's property
catalogue and internal ids. Anything else means the hook sent a request it should have refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from airflow_provider_crm.errors import CrmBadRequestError, CrmError, CrmNotFoundError, CrmValidationError
from airflow_provider_crm.hooks.hubspot import HubSpotHook
from airflow_provider_crm.hooks.kaiten import KaitenHook
from airflow_provider_crm.hooks.kustomer import KustomerHook
from airflow_provider_crm.hooks.microbase import MicroBaseHook
from airflow_provider_crm.sandbox import JournalEntry, Sandbox
from airflow_provider_crm.sandbox.vendors.hubspot import validation as hubspot_validation
from airflow_provider_crm.sandbox.vendors.kaiten import validation as kaiten_validation
from airflow_provider_crm.sandbox.vendors.kustomer import validation as kustomer_rules
from tests.properties.test_hostile_input import _microbase_update, emails, hostile_ids, values

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
UNIQUE_ORDER_PROPERTY = "hs_external_order_id"


def _kustomer_problems(entry: JournalEntry) -> list[str]:
    if entry.method != "POST":
        return [f"unexpected {entry.method} {entry.path}"]
    return [f"{e.attribute}: {e.message}" for e in kustomer_rules.validate_create(entry.body)]


def _kaiten_problems(entry: JournalEntry) -> list[str]:
    problems = [f"{e.location}: {e.message}" for e in kaiten_validation.check_slug(entry.segments[-1])]
    if entry.method == "PUT":
        problems += [f"{e.location}: {e.message}" for e in kaiten_validation.validate_replace(entry.body)]
    return problems


def _microbase_problems(entry: JournalEntry) -> list[str]:
    if entry.segments[-1] != "customer.update":
        return [f"unexpected call {entry.path}"]
    return _microbase_update(entry.body) if isinstance(entry.body, dict) else ["payload: should be object"]


def _hubspot_problems(entry: JournalEntry) -> list[str]:
    try:
        hubspot_validation.parse_object_input(entry.body)
    except hubspot_validation.BodyError as exc:
        return [exc.message]
    return []


PROBLEMS: dict[str, Callable[[JournalEntry], list[str]]] = {
    "kustomer": _kustomer_problems,
    "kaiten": _kaiten_problems,
    "microbase": _microbase_problems,
    "hubspot": _hubspot_problems,
}


def outcome(
    sandbox: Sandbox, vendor: str, call: Callable[[], Any], *, may_refuse: tuple[type[CrmError], ...] = ()
) -> None:
    """Refused locally with nothing sent, or sent only what the vendor's rules accept (and then written)."""
    try:
        call()
    except CrmValidationError:
        event("refused before sending")
        assert sandbox.journal(vendor) == [], "a validation error must come before any request"
        return
    except CrmError as exc:
        event(f"refused by the vendor: {type(exc).__name__}")
        sent = sandbox.journal(vendor)
        assert sent, f"{exc!r} without any request"
        problems = [problem for entry in sent for problem in PROBLEMS[vendor](entry)]
        assert problems == [], f"the hook sent a request the vendor refuses as invalid: {problems}; got {exc!r}"
        assert isinstance(exc, may_refuse), f"{vendor} refused a request the hook let through: {exc!r}"
        return
    event("written")
    sent = sandbox.journal(vendor)
    problems = [problem for entry in sent for problem in PROBLEMS[vendor](entry)]
    assert problems == [], f"accepted, but the vendor's rules refuse what was sent: {problems}"


def _seed_kaiten(sandbox: Sandbox, slug: object) -> None:
    if isinstance(slug, str) and kaiten_validation.check_slug(slug) == []:
        sandbox.app("kaiten").seed(slug, "Seeded customer")  # type: ignore[attr-defined]


def _seed_microbase(sandbox: Sandbox, customer_id: object) -> None:
    if isinstance(customer_id, str) and customer_id:
        sandbox.app("microbase").seed(id=customer_id, email="seeded@example.com")  # type: ignore[attr-defined]


def _seed_hubspot(sandbox: Sandbox, order_id: object, id_property: object) -> None:
    if id_property == UNIQUE_ORDER_PROPERTY and isinstance(order_id, str) and order_id.strip():
        sandbox.app("hubspot").seed({UNIQUE_ORDER_PROPERTY: order_id, "hs_order_name": "Seeded"})  # type: ignore[attr-defined]


# Each field mixes plausible values with hostile ones, so that many examples get past local checks
# and reach the vendor, where only the vendor's rules decide.
texts = st.text(min_size=1, max_size=20)
names = st.one_of(texts, values)
klasses = st.one_of(st.just("orders"), hostile_ids)
customs = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["totalNum", "noteStr", "placedAt", "giftBool", "siteUrl"]), values, max_size=2),
    values,
)
slugs = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True), hostile_ids)
domains = st.one_of(st.none(), st.from_regex(r"[a-z0-9-]{1,8}(\.[a-z]{2,4}){1,2}", fullmatch=True), values)
statuses = st.one_of(st.none(), st.sampled_from(["ACTIVE", "INACTIVE"]), values)
tag_lists = st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=6), max_size=3), values)
order_properties = st.one_of(
    st.dictionaries(
        st.sampled_from(["hs_order_name", "hs_total_price", "hs_is_gift", "hs_order_date", "hs_tags", "no_such"]),
        st.one_of(texts, values),
        min_size=1,
        max_size=3,
    ),
    values,
)


@settings(max_examples=100, suppress_health_check=FIXTURES_OK)
@given(klass=klasses, title=names, custom=customs, external_id=st.one_of(st.none(), texts, values))
def test_kustomer(sandbox: Sandbox, kustomer_conn: str, klass, title, custom, external_id) -> None:
    sandbox.reset("kustomer")
    hook = KustomerHook()
    outcome(
        sandbox, "kustomer", lambda: hook.create_kobject(klass, title=title, custom=custom, external_id=external_id)
    )


@settings(max_examples=100, suppress_health_check=FIXTURES_OK)
@given(slug=slugs, name=names, domain=domains)
def test_kaiten(sandbox: Sandbox, kaiten_conn: str, slug, name, domain) -> None:
    sandbox.reset("kaiten")
    _seed_kaiten(sandbox, slug)
    hook = KaitenHook()
    outcome(sandbox, "kaiten", lambda: hook.merge_customer(slug, name=name, domain=domain))


@settings(max_examples=100, suppress_health_check=FIXTURES_OK)
@given(customer_id=st.one_of(texts, hostile_ids, values), email=emails, status=statuses, tags=tag_lists)
def test_microbase(sandbox: Sandbox, microbase_conn: str, customer_id, email, status, tags) -> None:
    sandbox.reset("microbase")
    _seed_microbase(sandbox, customer_id)
    hook = MicroBaseHook()
    outcome(sandbox, "microbase", lambda: hook.update_customer(customer_id, email=email, status=status, tags=tags))


@settings(max_examples=100, suppress_health_check=FIXTURES_OK)
@given(
    order_id=st.one_of(texts, hostile_ids),
    properties=order_properties,
    id_property=st.one_of(st.none(), st.just(UNIQUE_ORDER_PROPERTY), values),
)
def test_hubspot(sandbox: Sandbox, hubspot_conn: str, order_id, properties, id_property) -> None:
    sandbox.reset("hubspot")
    _seed_hubspot(sandbox, order_id, id_property)
    hook = HubSpotHook()
    # Only the portal knows its properties, their types and its internal ids.
    may_refuse = (CrmBadRequestError, CrmNotFoundError)
    outcome(sandbox, "hubspot", lambda: hook.update_order(order_id, properties, id_property), may_refuse=may_refuse)
