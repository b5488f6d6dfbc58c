"""Run the example DAG end to end in real Airflow against the bundled sandbox, then print the ids.

Used by ``scripts/demo.sh``. Everything lives in a throwaway AIRFLOW_HOME under ``.airflow/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "crm_example_chain"


def prepare_airflow_home() -> None:
    home = ROOT / ".airflow" / "demo"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    prepare_airflow_home()
    from airflow_provider_crm.sandbox import Sandbox
    from airflow_provider_crm.sandbox.example_data import seed_example

    with Sandbox() as sandbox:
        seed_example(sandbox)
        for vendor in sandbox.vendors:
            connection = json.dumps(sandbox.airflow_connection(vendor))
            os.environ[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = connection

        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow 3.0/3.1
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
        from airflow.utils.state import DagRunState

        bag = DagBag(dag_folder=str(ROOT / "example_dags"))
        if bag.import_errors:
            print(json.dumps(bag.import_errors, indent=2), file=sys.stderr)
            return 1
        run = bag.get_dag(DAG_ID).test()
        ids = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
        print(f"\nDAG run {run.run_id}: {run.state}")
        for task_id, value in sorted(ids.items()):
            print(f"  {task_id:<22} -> {value}")
        print("\nWhat the sandbox now holds:")
        for kobject in sandbox.state("kustomer").kobjects("ecomm-order"):
            print(f"  Kustomer KObject {kobject['id']}: {json.dumps(kobject['custom'], sort_keys=True)}")
        for customer in sandbox.state("kaiten").customers():
            print(f"  Kaiten customer {customer['slug']}: externalCustomerId={customer['externalCustomerId']}")
        for customer in sandbox.state("microbase").customers():
            print(f"  MicroBase customer {customer['id']}: tags={customer['tags']}")
        for order in sandbox.state("hubspot").orders():
            linked = order["properties"].get("kustomer_kobject_id")
            print(f"  HubSpot order {order['id']}: kustomer_kobject_id={linked}")
        return 0 if run.state == DagRunState.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
