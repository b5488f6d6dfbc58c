"""Legacy connection-form methods for Airflow 3.0/3.1, derived from :mod:`connection_forms`.

Airflow 3.2+ reads ``conn-fields`` from provider info and never calls these. Older versions call
``get_connection_form_widgets()`` (with Flask mocked out), so wtforms is imported lazily here.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_crm.connection_forms import CONNECTION_TYPES


def _field_type(schema: dict[str, Any]) -> str:
    kinds = schema.get("type", "string")
    if isinstance(kinds, list):
        kinds = next((k for k in kinds if k != "null"), "string")
    return str(kinds)


def legacy_widgets(conn_type: str) -> dict[str, Any]:
    """wtforms fields equivalent to the ``conn-fields`` of ``conn_type``."""
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    try:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    except ImportError:  # Airflow 3 without the FAB UI: widgets are only metadata
        BS3PasswordFieldWidget = BS3TextFieldWidget = None

    widgets: dict[str, Any] = {}
    for name, spec in CONNECTION_TYPES[conn_type]["conn-fields"].items():
        schema = spec.get("schema", {})
        options: dict[str, Any] = {"description": spec.get("description")}
        kind = _field_type(schema)
        if schema.get("format") == "password":
            field = PasswordField(spec["label"], widget=_instance(BS3PasswordFieldWidget), **options)
        elif kind == "boolean":
            field = BooleanField(spec["label"], default=schema.get("default"), **options)
        elif kind == "integer":
            field = IntegerField(
                spec["label"], widget=_instance(BS3TextFieldWidget), default=schema.get("default"), **options
            )
        else:
            default = schema.get("default")
            field = StringField(
                spec["label"],
                widget=_instance(BS3TextFieldWidget),
                default=None if default is None else str(default),
                **options,
            )
        widgets[f"extra__{conn_type}__{name}"] = field
    return widgets


def _instance(widget_class: Any) -> Any:
    return widget_class() if widget_class is not None else None


def legacy_field_behaviour(conn_type: str) -> dict[str, Any]:
    """``ui-field-behaviour`` in the snake_case shape the legacy method returns."""
    behaviour = CONNECTION_TYPES[conn_type]["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }
