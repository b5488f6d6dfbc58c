"""``python -m airflow_provider_crm.sandbox``: run the sandbox server."""

from airflow_provider_crm.sandbox.cli import main

raise SystemExit(main())
