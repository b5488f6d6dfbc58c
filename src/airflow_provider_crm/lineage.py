"""OpenLineage for the operators: the vendor dataset a task writes, how many records, the file it read.

Lineage tools draw their graphs ("orders.csv → HubSpot orders") from the events the listener of
``apache-airflow-providers-openlineage`` emits after each task; it asks the operator through
``get_openlineage_facets_on_complete`` / ``_on_failure``, which :class:`RecordLineage` and
:class:`BulkLineage` add. The provider is optional: OpenLineage is imported only inside
:func:`operator_lineage`, which returns ``None`` without it.

=========  ================================================  ===================
vendor     namespace                                          name
=========  ================================================  ===================
Kustomer   ``kustomer://<API host>``                          ``klasses.<klass>``
HubSpot    ``hubspot://<portal_id extra>``, else API host     ``orders``
Kaiten     ``kaiten://<host>``                                ``customers``
MicroBase  ``microbase://<host>``                             ``customers``
=========  ================================================  ===================

A host keeps an explicit port (``host:port``), as OpenLineage's naming spec writes a datasource's
authority (``spec/Naming.md``). An input file is named as Airflow's providers name theirs: a local
path is namespace ``file`` with the absolute path as name (common.io ``assets/file.py``); an
object-storage URL ``s3://bucket/key`` is namespace ``s3://bucket``, name ``key`` (Amazon
``aws/assets/s3.py``), and ``gs://``, ``abfs://``... alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_crm.hooks.base import CrmHook

OBJECT_NAMES = {"hubspot": "orders", "kaiten": "customers", "microbase": "customers"}
"""Dataset name by connection type; Kustomer's depends on the klass (``klasses.<klass>``)."""


class DatasetName(NamedTuple):
    """An OpenLineage dataset's identity."""

    namespace: str
    name: str


def vendor_dataset(hook: CrmHook, klass_name: str | None = None) -> DatasetName:
    """The records a hook writes to, named from its connection.

    :param hook: The vendor hook the task writes through.
    :param klass_name: The Kustomer klass; required for Kustomer, ignored otherwise.
    """
    if hook.conn_type == "kustomer":
        if not klass_name:
            raise ValueError("a Kustomer dataset needs the klass name")
        name = f"klasses.{klass_name}"
    else:
        name = OBJECT_NAMES[hook.conn_type]
    portal = hook.extra("portal_id") if hook.conn_type == "hubspot" else None
    authority = str(portal).strip() if portal else urlsplit(hook.base_url()).netloc.rpartition("@")[2].lower()
    return DatasetName(f"{hook.conn_type}://{authority}", name)


def file_dataset(location: str) -> DatasetName:
    """A bulk task's input file: a local path or an object-storage URL.

    :param location: As the operator's ``source`` takes it (``/data/orders.csv``, ``s3://bucket/key``).
    """
    parts = urlsplit(location)
    if parts.scheme == "file":
        return DatasetName(f"file://{parts.netloc}" if parts.netloc else "file", parts.path)
    if not parts.scheme or not parts.netloc:  # a plain (or Windows drive) path
        return DatasetName("file", os.path.abspath(location))
    return DatasetName(f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/")


def operator_lineage(
    outputs: Sequence[DatasetName], written: int | None = None, inputs: Sequence[DatasetName] = ()
) -> OperatorLineage | None:
    """What the listener reports for a task, or ``None`` when the OpenLineage provider is not installed.

    :param outputs: The datasets written.
    :param written: Records written, reported as each output's ``outputStatistics.rowCount``; ``None``: unknown.
    :param inputs: The datasets read.
    """
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            InputDataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    statistics = {} if written is None else {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=written)}
    return OperatorLineage(
        inputs=[InputDataset(namespace=d.namespace, name=d.name) for d in inputs],
        outputs=[OutputDataset(namespace=d.namespace, name=d.name, outputFacets=dict(statistics)) for d in outputs],
    )


class RecordLineage:
    """OpenLineage methods for an operator that writes one record through its ``hook``.

    The dataset comes from the hook's connection (and ``klass_name`` for Kustomer); a task that
    succeeded wrote one record, a failed one reports the dataset without a count.
    """

    if TYPE_CHECKING:

        @property
        def hook(self) -> CrmHook: ...

    def lineage_output(self) -> DatasetName:
        """The vendor dataset this task writes."""
        return vendor_dataset(self.hook, getattr(self, "klass_name", None))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """Called by the OpenLineage listener after a successful run.

        :param task_instance: The finished task instance (unused: the operator kept what it needs).
        """
        return operator_lineage([self.lineage_output()], written=1)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        """Called by the OpenLineage listener after a failed run: the dataset, no count.

        :param task_instance: The failed task instance (unused).
        """
        return operator_lineage([self.lineage_output()])


class BulkLineage(RecordLineage):
    """OpenLineage methods for a bulk operator: the records its run wrote, and its ``source`` file.

    :meth:`note_written` keeps the run's count on the operator, where the listener, called on the
    same instance after ``execute``, finds it; a failed run reports what it wrote before it failed.
    A dry run writes nothing, so it reports no output.
    """

    source: str | None
    preview_only: bool
    records_written: int | None = None

    def note_written(self, counts: Mapping[str, int]) -> None:
        """Keep the number of records the vendor holds after the run (created, updated, unchanged).

        :param counts: Records per ledger action, as the run's summary counts them.
        """
        from airflow_provider_crm.bulk.ledger import WRITTEN

        self.records_written = sum(counts.get(action, 0) for action in WRITTEN)

    def bulk_lineage(self) -> OperatorLineage | None:
        """The input file (if any), and the vendor dataset with the records written (unless a dry run)."""
        inputs = [file_dataset(self.source)] if self.source else []
        outputs = [] if self.preview_only else [self.lineage_output()]
        return operator_lineage(outputs, self.records_written, inputs)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """Called by the OpenLineage listener after a successful run.

        :param task_instance: The finished task instance (unused).
        """
        return self.bulk_lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        """Called by the OpenLineage listener after a failed run.

        :param task_instance: The failed task instance (unused).
        """
        return self.bulk_lineage()
