from __future__ import annotations

import importlib
import json
import warnings
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_crm.get_provider_info import get_provider_info
from tests.airflow_versions import declarative_connection_forms, legacy_connection_forms

CONNECTION_TYPES = {entry["connection-type"]: entry for entry in get_provider_info()["connection-types"]}


def test_entry_point_is_registered() -> None:
    targets = {ep.value for ep in entry_points(group="apache_airflow_provider")}
    assert "airflow_provider_crm.get_provider_info:get_provider_info" in targets


def test_provider_info_validates_against_airflow_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)
    assert get_provider_info()["package-name"] == "airflow-provider-crm"


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_hook_matches_its_connection_type(conn_type: str) -> None:
    entry = CONNECTION_TYPES[conn_type]
    module_name, class_name = entry["hook-class-name"].rsplit(".", 1)
    hook = getattr(importlib.import_module(module_name), class_name)
    assert hook.conn_type == conn_type
    assert hook.hook_name == entry["hook-name"]
    assert hook.default_conn_name == f"{conn_type}_default"
    assert hook.conn_name_attr == f"{conn_type}_conn_id"
    # Airflow 3.0/3.1 discover the legacy methods only on the class itself.
    assert "get_connection_form_widgets" in hook.__dict__
    assert "get_ui_field_behaviour" in hook.__dict__


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_legacy_form_methods_match_conn_fields(conn_type: str) -> None:
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    entry = CONNECTION_TYPES[conn_type]
    module_name, class_name = entry["hook-class-name"].rsplit(".", 1)
    hook = getattr(importlib.import_module(module_name), class_name)

    widgets = hook.get_connection_form_widgets()
    assert set(widgets) == {f"extra__{conn_type}__{name}" for name in entry["conn-fields"]}
    for name, spec in entry["conn-fields"].items():
        widget = widgets[f"extra__{conn_type}__{name}"]
        assert widget.args[0] == spec["label"]
        assert widget.field_class in (BooleanField, IntegerField, PasswordField, StringField)
        if spec["schema"].get("format") == "password":
            assert widget.field_class is PasswordField

    behaviour = hook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == entry["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == entry["ui-field-behaviour"]["relabeling"]
    assert behaviour["placeholders"] == entry["ui-field-behaviour"]["placeholders"]


def test_provider_info_module_is_import_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from airflow_provider_crm.get_provider_info import get_provider_info;"
        "get_provider_info();"
        "heavy = [m for m in ('airflow', 'requests', 'pydantic', 'pendulum') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def _expected_behaviour(conn_type: str) -> dict[str, object]:
    """``ui-field-behaviour`` as the ProvidersManager stores it: snake_case, extra placeholders prefixed."""
    behaviour = CONNECTION_TYPES[conn_type]["ui-field-behaviour"]
    standard = {"host", "schema", "login", "password", "port", "extra"}
    return {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": {
            (name if name in standard else f"extra__{conn_type}__{name}"): text
            for name, text in behaviour["placeholders"].items()
        },
    }


def _fresh_providers_manager():  # type: ignore[no-untyped-def]
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager._cleanup()  # forget what earlier tests (or a mocked UI call) registered
    return manager


@legacy_connection_forms
def test_providers_manager_registers_the_legacy_kustomer_form() -> None:
    """Airflow 3.0/3.1 import the hook and register what its legacy form methods return."""
    from wtforms import StringField

    manager = _fresh_providers_manager()
    entry = CONNECTION_TYPES["kustomer"]
    hook = manager.hooks["kustomer"]
    assert hook is not None, "the hook was refused (see the ProvidersManager's warnings)"
    assert (hook.hook_class_name, hook.package_name) == (entry["hook-class-name"], "airflow-provider-crm")
    assert hook.connection_testable

    widgets = {
        key: info for key, info in manager.connection_form_widgets.items() if key.startswith("extra__kustomer__")
    }
    assert set(widgets) == {f"extra__kustomer__{name}" for name in entry["conn-fields"]}
    for name, spec in entry["conn-fields"].items():
        info = widgets[f"extra__kustomer__{name}"]
        assert (info.hook_class_name, info.package_name) == ("KustomerHook", "airflow-provider-crm")
        assert info.field.args[0] == spec["label"]
        assert not info.is_sensitive
    assert widgets["extra__kustomer__region"].field.field_class is StringField
    assert manager.field_behaviours["kustomer"] == _expected_behaviour("kustomer")

    # Password-format extras of the other types are registered as sensitive (masked in the form).
    sensitive = {key for key, info in manager.connection_form_widgets.items() if info.is_sensitive}
    assert {
        f"extra__{conn_type}__{name}"
        for conn_type, other in CONNECTION_TYPES.items()
        for name, spec in other["conn-fields"].items()
        if spec["schema"].get("format") == "password"
    } <= sensitive


@legacy_connection_forms
def test_connection_form_of_the_3_0_ui_shows_the_kustomer_fields() -> None:
    """What the 3.0/3.1 UI's connection form gets: hook metadata built with wtforms and FAB mocked."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    _fresh_providers_manager()  # as in a fresh API server: 3.1 reuses hooks registered with real wtforms
    try:
        meta = {m.connection_type: m for m in HookMetaService.hook_meta_data.__wrapped__()}
    finally:
        _fresh_providers_manager()  # the call above leaves hooks registered with mocked wtforms fields
    entry = CONNECTION_TYPES["kustomer"]
    kustomer = meta["kustomer"]
    assert kustomer.hook_name == entry["hook-name"]
    assert kustomer.standard_fields is not None
    assert kustomer.standard_fields.host.title == "Base URL"
    assert kustomer.standard_fields.password.title == "API key"
    assert kustomer.standard_fields.login.hidden
    extra = kustomer.extra_fields or {}
    assert set(extra) == {f"extra__kustomer__{name}" for name in entry["conn-fields"]}
    region = extra["extra__kustomer__region"]
    assert region["value"] == "us"
    assert region["schema"]["title"] == "Region"
    assert region["description"] == entry["conn-fields"]["region"]["description"]
    assert extra["extra__kustomer__max_attempts"]["schema"]["type"] == ["integer", "null"]
    assert extra["extra__kustomer__verify_ssl"]["schema"]["type"] == ["boolean", "null"]
    secret = meta["hubspot"].extra_fields["extra__hubspot__client_secret"]
    assert secret["schema"].get("format") == "password"


@declarative_connection_forms
def test_providers_manager_reads_conn_fields_and_never_calls_the_legacy_methods(monkeypatch) -> None:
    """Airflow 3.2+ take the form from provider info; the legacy methods stay for 3.0/3.1 only."""
    calls: list[str] = []
    for entry in CONNECTION_TYPES.values():
        module_name, class_name = entry["hook-class-name"].rsplit(".", 1)
        hook_class = getattr(importlib.import_module(module_name), class_name)
        for method in ("get_connection_form_widgets", "get_ui_field_behaviour"):

            def called(cls, _method: str = method) -> dict[str, object]:
                calls.append(f"{cls.__name__}.{_method}")
                raise AssertionError("legacy connection-form method called on Airflow 3.2+")

            monkeypatch.setattr(hook_class, method, classmethod(called))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = _fresh_providers_manager()
        widgets = dict(manager.connection_form_widgets)
        behaviours = dict(manager.field_behaviours)
        hooks = {conn_type: manager.hooks[conn_type] for conn_type in CONNECTION_TYPES}
    _fresh_providers_manager()

    assert calls == []
    assert all(hook is not None for hook in hooks.values()), hooks
    assert not [w for w in caught if "airflow_provider_crm" in str(w.message)], "no deprecation warning for our hooks"
    entry = CONNECTION_TYPES["kustomer"]
    for name, spec in entry["conn-fields"].items():
        info = widgets[f"extra__kustomer__{name}"]
        assert info.package_name == "airflow-provider-crm"
        assert info.field["schema"]["title"] == spec["label"]
        assert info.field["description"] == spec["description"]
    assert widgets["extra__kustomer__region"].field["value"] == "us"
    assert widgets["extra__hubspot__client_secret"].is_sensitive
    assert behaviours["kustomer"] == _expected_behaviour("kustomer")
