"""Without OpenLineage importable, the operators' lineage methods answer ``None`` and nothing else changes.

Not collected here: ``test_lineage_events.py`` copies it, with ``user_tests_lineage.py``, into a
project whose ``conftest.py`` makes every OpenLineage import fail, as where the provider is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_crm.operators.bulk import KaitenBulkUpdateCustomersOperator
from airflow_provider_crm.operators.kaiten import KaitenUpdateCustomerOperator
from airflow_provider_crm.sandbox.dag_runner import CrmAirflow


def test_openlineage_cannot_be_imported() -> None:
    with pytest.raises(ImportError):
        import airflow.providers.openlineage  # noqa: F401


def test_the_lineage_methods_answer_none(crm_airflow: CrmAirflow, tmp_path: Path) -> None:
    single = KaitenUpdateCustomerOperator(task_id="single", customer_slug="acme-corp", name="Acme")
    bulk = KaitenBulkUpdateCustomersOperator(task_id="bulk", source=str(tmp_path / "customers.jsonl"))
    for operator in (single, bulk):
        assert operator.get_openlineage_facets_on_complete(None) is None
        assert operator.get_openlineage_facets_on_failure(None) is None
