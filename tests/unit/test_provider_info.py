from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_crm.get_provider_info import get_provider_info

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
