"""Per-vendor record writers for the bulk runner: key, validate, write and preview records.

Record shapes (keys as in the hooks' arguments):

- Kustomer create: ``external_id`` (the key; strongly advised), ``title``, ``custom``,
  ``customer_id``, ``company_id``, ``description``, ``tags``, ``data``, ``icon``, ``images``,
  ``created_at``, ``imported_at``.
- Kustomer update: ``id`` (the key) plus any of ``title``, ``custom``, ``external_id``,
  ``description``, ``tags``, ``data``, ``icon``, ``images``, ``created_at``, ``imported_at``,
  ``rev``, ``parent``.
- Kustomer upsert: the create fields, with ``external_id`` (the key) required.
- Kaiten: ``slug`` (the key) plus any of ``name``, ``external_customer_id``, ``domain``; a field
  that is absent keeps its value, a field set to ``null`` is cleared.
- MicroBase: ``id`` (the key) plus any of ``email``, ``first_name``, ``last_name``, ``status``,
  ``tags``.
- HubSpot: ``id`` (the key: internal id, or the ``id_property`` value) and ``properties``.

A writer's ``cell_type(column)`` says how a CSV cell of that column is typed (see
:mod:`~airflow_provider_crm.bulk.cells`). Kaiten and HubSpot writers have none: Kaiten's customer
fields are strings, and HubSpot takes every property value as a string on the wire
(``properties: dict[str, str]`` in HubSpot/hubspot-api-python, e.g.
``hubspot/crm/objects/models/simple_public_object_batch_input_upsert.py``).
"""

from airflow_provider_crm.bulk.writers.common import PerRecordWriter, StillRateLimitedError, waiting_out_rate_limits
from airflow_provider_crm.bulk.writers.hubspot import HubSpotBatchWriter
from airflow_provider_crm.bulk.writers.kaiten import KaitenWriter
from airflow_provider_crm.bulk.writers.kustomer import KustomerCreateWriter, KustomerUpdateWriter, KustomerUpsertWriter
from airflow_provider_crm.bulk.writers.microbase import MicroBaseWriter

__all__ = [
    "HubSpotBatchWriter",
    "KaitenWriter",
    "KustomerCreateWriter",
    "KustomerUpdateWriter",
    "KustomerUpsertWriter",
    "MicroBaseWriter",
    "PerRecordWriter",
    "StillRateLimitedError",
    "waiting_out_rate_limits",
]
