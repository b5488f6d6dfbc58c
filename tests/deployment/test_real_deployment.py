"""Airflow as users run it: PostgreSQL, the scheduler (LocalExecutor), the dag-processor, the triggerer, the API server.

``dag.test()`` runs a DAG in one process, so it never shows an operator or a trigger that does not
serialize, a template that renders differently on a worker, or an XCom the REST API cannot read.
Here each Airflow component is its own process, on a throwaway PostgreSQL cluster
(``scripts/start_postgres.sh``), talking to the sandbox that runs in the test process; DAG runs are
triggered, followed and read through the REST API (``/api/v2``), and the sandbox says what the
vendors hold and which requests reached them.

Runs where PostgreSQL can be started (installed by the script with apt-get when missing, as root);
otherwise skips saying why, or fails with ``CRM_DEPLOYMENT_REQUIRED=1``. Under ``CI`` it runs only
with ``CRM_DEPLOYMENT_REQUIRED=1``: one leg of the CI matrix is enough for a test this slow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from airflow_provider_crm.sandbox import Sandbox
from airflow_provider_crm.sandbox.example_data import seed_example
from airflow_provider_crm.sandbox.journal import JournalEntry
from tests.airflow_versions import defers_to_the_triggerer
from tests.helpers import read_jsonl

REPO = Path(__file__).resolve().parents[2]
START_POSTGRES = REPO / "scripts" / "start_postgres.sh"
CHAIN_DAG = REPO / "example_dags" / "example_crm_chain.py"
BULK_DAG = Path(__file__).parent / "dags" / "crm_deployment_bulk_deferrable.py"
CHAIN_ID = "crm_example_chain"
BULK_ID = "crm_deployment_bulk_deferrable"
BULK_KLASS = "deployment-order"
BULK_COUNT = 150
LINKED_KAITEN_CUSTOMER = "globex"  # passed as the run's conf, so params reach the worker's templates
BULK_JOB_SECONDS = 10
"""How long a sandbox bulk job takes. Long enough for the trigger to poll each job several times, and for the
scheduler to see the deferring worker exit before the trigger fires: when it sees that exit only after the
resumed task was queued again, Airflow fails the task ("finished with state success, but the task instance's
state attribute is queued"; apache/airflow#67287, fixed by #68741, which 3.3.2 lacks; the variant with the resumed
task already running, #72716, is open). The supervisor notices its worker's exit up to 5 s late."""
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")

START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 150.0
POLL_S = 0.5

REQUIRED = os.environ.get("CRM_DEPLOYMENT_REQUIRED") == "1"

pytestmark = pytest.mark.deployment


def _unavailable(reason: str) -> NoReturn:
    """Skip because the deployment can't be set up here, or fail when it is required."""
    if REQUIRED:
        pytest.fail(f"CRM_DEPLOYMENT_REQUIRED=1 but {reason}")
    pytest.skip(reason)


if os.environ.get("CI", "").lower() not in ("", "0", "false") and not REQUIRED:
    pytest.skip("a real deployment runs on the CI leg that sets CRM_DEPLOYMENT_REQUIRED=1", allow_module_level=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{path}: {exc}>"
    return text[-chars:]


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster and database, stopped and deleted after the module."""
    # Not pytest's tmp_path: as root the cluster runs as the postgres user, who can't enter /tmp/pytest-of-root.
    cluster = Path(tempfile.mkdtemp(prefix="crm-pg-"))
    try:
        try:
            started = subprocess.run(
                ["bash", str(START_POSTGRES), str(cluster)], capture_output=True, text=True, timeout=600
            )
        except subprocess.TimeoutExpired as exc:
            _unavailable(f"{START_POSTGRES.name} did not finish in {exc.timeout:.0f}s:\n{exc.stderr!r}")
        if started.returncode != 0 or not started.stdout.strip():
            _unavailable(f"PostgreSQL could not be started by {START_POSTGRES.name}:\n{started.stderr[-3000:]}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        _stop_postgres(cluster)
        shutil.rmtree(cluster, ignore_errors=True)


def _stop_postgres(cluster: Path) -> None:
    """A fast shutdown through the script; an immediate one (SIGQUIT to the postmaster) if that fails."""
    if not (cluster / "data" / "PG_VERSION").exists():
        return
    stop = subprocess.run(["bash", str(START_POSTGRES), "--stop", str(cluster)], capture_output=True, timeout=60)
    pid_file = cluster / "data" / "postmaster.pid"
    if stop.returncode != 0 and pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)


# -- the sandbox the workers and the triggerer talk to ---------------------------------------------


@pytest.fixture(scope="module")
def vendors() -> Iterator[Sandbox]:
    """The sandbox on 127.0.0.1, seeded with the example chain's records and one more Kaiten customer."""
    with Sandbox() as sandbox:
        seed_example(sandbox)
        sandbox.app("kaiten").seed(LINKED_KAITEN_CUSTOMER, "Globex")
        sandbox.kustomer.configure({"bulk_processing_seconds": BULK_JOB_SECONDS})
        yield sandbox


# -- Airflow ---------------------------------------------------------------------------------------


@dataclass
class Deployment:
    """The running Airflow components and a REST API client for them."""

    url: str
    home: Path
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/v2``; the decoded JSON answer, or an AssertionError naming the status and body."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(f"{self.url}/api/v2{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                return dict(json.load(response))
        except (OSError, ValueError):
            return {}

    def exited(self, names: tuple[str, ...] = COMPONENTS) -> list[str]:
        """Which of the ``names`` components are no longer running, with their exit codes."""
        processes = {name: self.processes[name] for name in names if name in self.processes}
        return [f"{name} (exit {p.returncode})" for name, p in processes.items() if p.poll() is not None]

    def diagnostics(self) -> str:
        """The tail of each component's log and of every task log: what a failure message carries."""
        parts = [f"--- {name} log ({path}) ---\n{_tail(path)}" for name, path in self.logs.items()]
        for task_log in sorted((self.home / "logs").rglob("*.log")):
            parts.append(f"--- task log {task_log.relative_to(self.home / 'logs')} ---\n{_tail(task_log, 2000)}")
        return "\n".join(parts)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, needs: tuple[str, ...] = COMPONENTS) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the logs when time runs out or a
        component it ``needs`` dies (so a dead triggerer fails only what waits on the triggerer)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if dead := self.exited(needs):
                pytest.fail(f"{', '.join(dead)} while waiting for {what}\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.diagnostics()}")
            time.sleep(POLL_S)


def _stop_all(processes: list[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM to each component's process group (it and its workers) at once, SIGKILL to what lingers."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        # Workers may outlive their parent; the group is still ours to end.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def _airflow_env(home: Path, database: str, port: int, sandbox: Sandbox) -> dict[str, str]:
    """Settings as a deployment passes them: environment variables only, connections included."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    url = f"http://127.0.0.1:{port}"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=database,
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM="4",  # two cores here: a few worker processes at most
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__BASE_URL=url,
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        # Airflow 3.0 signs tokens with its issuer setting, unset by default, which PyJWT 2.10+ refuses.
        AIRFLOW__API_AUTH__JWT_ISSUER="airflow-provider-crm-tests",
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        # Not the default ports: another Airflow on this machine must not answer for ours.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
    )
    for vendor in sandbox.vendors:
        env[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(sandbox.airflow_connection(vendor))
    return env


@pytest.fixture(scope="module")
def deployment(postgres_url: str, vendors: Sandbox) -> Iterator[Deployment]:
    """``airflow db migrate``, then the four components, each in its own process group; all stopped after."""
    home = Path(tempfile.mkdtemp(prefix="crm-deployment-"))
    (home / "dags").mkdir()
    for dag_file in (CHAIN_DAG, BULK_DAG):
        shutil.copy(dag_file, home / "dags" / dag_file.name)
    port = _free_port()
    env = _airflow_env(home, postgres_url, port, vendors)
    airflow = str(Path(sys.executable).with_name("airflow"))
    logs = {name: home / f"{name}.log" for name in COMPONENTS}
    deployment = Deployment(url=f"http://127.0.0.1:{port}", home=home, logs=logs)
    try:
        migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, (
            f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
        )
        for name in COMPONENTS:
            args = ["--host", "127.0.0.1", "--port", str(port)] if name == "api-server" else []
            with open(logs[name], "wb") as log:
                deployment.processes[name] = subprocess.Popen(
                    [airflow, name, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        deployment.wait_for("every component to report healthy", lambda: _all_healthy(deployment), START_TIMEOUT_S)
        deployment.token = _token(deployment.url)
        yield deployment
    finally:
        _stop_all(list(deployment.processes.values()))
        shutil.rmtree(home, ignore_errors=True)


def _all_healthy(deployment: Deployment) -> bool:
    health = deployment.health()
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return bool(health) and all(health.get(part, {}).get("status") == "healthy" for part in parts)


def _token(url: str) -> str:
    """A JWT from the simple auth manager, which with ``all_admins`` hands one out without credentials."""
    with urllib.request.urlopen(f"{url}/auth/token", timeout=30) as response:
        return str(json.load(response)["access_token"])


# -- DAG runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    dag_id: str
    run_id: str
    info: dict[str, Any]  # the DAG run as GET /dags/{dag_id}/dagRuns/{run_id} answers once it finished


TERMINAL = {"success", "failed"}


def _trigger(deployment: Deployment, dag_id: str, conf: dict[str, Any]) -> str:
    """Wait for the DAG to be parsed, unpause it and trigger a run; the run's id."""
    quoted = urllib.parse.quote(dag_id)

    def parsed() -> bool:
        errors = deployment.request("GET", "/importErrors")["import_errors"]
        if errors:  # a DAG that does not import or serialize never shows up: say why at once
            pytest.fail("import errors:\n" + "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors))
        return dag_id in {dag["dag_id"] for dag in deployment.request("GET", "/dags?limit=100")["dags"]}

    deployment.wait_for(f"the dag-processor to parse {dag_id}", parsed, START_TIMEOUT_S)
    deployment.request("PATCH", f"/dags/{quoted}", {"is_paused": False})
    run = deployment.request("POST", f"/dags/{quoted}/dagRuns", {"logical_date": None, "conf": conf})
    return str(run["dag_run_id"])


def _finished(deployment: Deployment, dag_id: str, run_id: str, needs: tuple[str, ...] = COMPONENTS) -> Run:
    """The run once it succeeded or failed, as the REST API shows it."""
    path = f"/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}"

    def state() -> dict[str, Any] | None:
        info = deployment.request("GET", path)
        return info if info["state"] in TERMINAL else None

    info = deployment.wait_for(f"DAG run {dag_id} / {run_id} to finish", state, RUN_TIMEOUT_S, needs)
    return Run(dag_id, run_id, info)


@pytest.fixture(scope="module")
def started(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both DAGs triggered through the REST API at once (run ids by DAG id); each test waits for its own."""
    output = tmp_path_factory.mktemp("bulk-output")
    return {
        CHAIN_ID: _trigger(deployment, CHAIN_ID, {"kaiten_customer": LINKED_KAITEN_CUSTOMER}),
        BULK_ID: _trigger(deployment, BULK_ID, {"klass": BULK_KLASS, "count": BULK_COUNT, "output": str(output)}),
    }


def _task_states(deployment: Deployment, run: Run) -> dict[str, str]:
    """Each task's state and try, e.g. ``success (try 1)``: a retry would hide a first try that failed."""
    path = f"/dags/{urllib.parse.quote(run.dag_id)}/dagRuns/{urllib.parse.quote(run.run_id)}/taskInstances"
    tis = deployment.request("GET", path)["task_instances"]
    return {ti["task_id"]: f"{ti['state']} (try {ti['try_number']})" for ti in tis}


def _state_changes(deployment: Deployment, run: Run, task_id: str) -> list[str]:
    """The states a task instance reported through the execution API, oldest first (its audit log)."""
    query = urllib.parse.urlencode({"dag_id": run.dag_id, "run_id": run.run_id, "task_id": task_id, "limit": 100})
    events = deployment.request("GET", f"/eventLogs?{query}&order_by=when")["event_logs"]
    return [e["event"] for e in events if e["event"] in {"running", "deferred", "success", "failed"}]


def _xcom(deployment: Deployment, run: Run, task_id: str, key: str = "return_value") -> Any:
    """An XCom as the REST API gives it."""
    path = (
        f"/dags/{urllib.parse.quote(run.dag_id)}/dagRuns/{urllib.parse.quote(run.run_id)}"
        f"/taskInstances/{task_id}/xcomEntries/{key}"
    )
    return deployment.request("GET", path)["value"]


def _task_log(deployment: Deployment, run: Run, task_id: str, try_number: int = 1) -> str:
    """A task try's log through the REST API, one line per event."""
    path = (
        f"/dags/{urllib.parse.quote(run.dag_id)}/dagRuns/{urllib.parse.quote(run.run_id)}"
        f"/taskInstances/{task_id}/logs/{try_number}?full_content=true"
    )
    content = deployment.request("GET", path)["content"]
    if isinstance(content, str):  # Airflow 3.0 answers one text
        return content
    return "\n".join(json.dumps(line) if isinstance(line, dict) else str(line) for line in content)


def _assert_succeeded(deployment: Deployment, run: Run, tasks: set[str]) -> None:
    states = _task_states(deployment, run)
    assert run.info["state"] == "success" and states == dict.fromkeys(tasks, "success (try 1)"), (
        f"{run.dag_id} / {run.run_id}: run {run.info['state']}, tasks {states} (the Airflow logs follow)"
    )


# -- the tests -------------------------------------------------------------------------------------


def test_example_chain_runs_on_a_real_deployment(
    deployment: Deployment, started: dict[str, str], vendors: Sandbox
) -> None:
    run = _finished(deployment, CHAIN_ID, started[CHAIN_ID], needs=("scheduler", "dag-processor", "api-server"))
    _assert_succeeded(
        deployment,
        run,
        {"create_order", "ship_order", "link_licence_customer", "tag_shop_customer", "patch_crm_order"},
    )

    kobjects = vendors.state("kustomer").kobjects("ecomm-order")
    assert [k["externalId"] for k in kobjects] == ["order-1042"], "one KObject, created once"
    kobject = kobjects[0]
    kobject_id = kobject["id"]
    assert _xcom(deployment, run, "create_order") == kobject_id, "the id went to XCom and reads back through the API"
    assert kobject["custom"]["orderStatusStr"] == "shipped" and kobject["rev"] == 1, "ship_order found it by that id"
    # Rendered on the worker from the run the API created.
    assert dt.datetime.fromisoformat(kobject["custom"]["orderUpdatedAt"]) == dt.datetime.fromisoformat(
        run.info["run_after"].replace("Z", "+00:00")
    )

    kaiten = vendors.state("kaiten")
    assert kaiten.get(LINKED_KAITEN_CUSTOMER)["externalCustomerId"] == kobject_id, "the run's conf reached params"
    assert kaiten.get("acme-corp")["externalCustomerId"] is None, "the params' default was overridden"
    assert _xcom(deployment, run, "link_licence_customer") == LINKED_KAITEN_CUSTOMER

    shop_customer = vendors.state("microbase").get("HkhhuXESl")
    assert shop_customer["tags"] == ["ordered", f"kustomer-{kobject_id}"] and shop_customer["status"] == "ACTIVE"
    assert _xcom(deployment, run, "tag_shop_customer") == "HkhhuXESl"

    order = vendors.state("hubspot").find_by_property("hs_external_order_id", "order-1042")
    assert order["properties"]["kustomer_kobject_id"] == kobject_id
    assert order["properties"]["hs_fulfillment_status"] == "shipped"
    assert _xcom(deployment, run, "patch_crm_order") == order["id"]


def _bulk_polls(journal: list[JournalEntry]) -> list[JournalEntry]:
    """``GET /v1/bulk/{id}``: a job's status, which only the trigger asks for (the worker reads ``/batches``)."""
    return [e for e in journal if e.method == "GET" and len(e.segments) == 3 and e.segments[1] == "bulk"]


@defers_to_the_triggerer
def test_deferrable_kustomer_bulk_run_waits_in_the_triggerer(
    deployment: Deployment, started: dict[str, str], vendors: Sandbox
) -> None:
    run = _finished(deployment, BULK_ID, started[BULK_ID])
    _assert_succeeded(deployment, run, {"make_orders", "push_orders"})

    stored = {k["externalId"]: k["id"] for k in vendors.state("kustomer").kobjects(BULK_KLASS)}
    expected_keys = {f"bulk-order-{n}" for n in range(BULK_COUNT)}
    assert set(stored) == expected_keys, "every record of the upstream XCom stored once, in the templated klass"

    summary = _xcom(deployment, run, "push_orders")
    assert (summary["total"], summary["created"], summary["rejected"]) == (BULK_COUNT, BULK_COUNT, 0), summary
    assert _xcom(deployment, run, "push_orders", "ids") == stored, "the ids pushed are the ids Kustomer holds"
    ledger = Path(summary["ledger_path"])
    assert ledger.parent.name == run.run_id, "ledger_path rendered on the worker with the run's id"
    assert {line["key"]: line["remote_id"] for line in read_jsonl(ledger)} == stored

    # The wait happened in the triggerer: between the worker's last submit and its first read of the
    # results, Kustomer saw nothing but status polls, and only a trigger polls the status.
    journal = [e for e in vendors.journal("kustomer") if BULK_KLASS in e.path or "bulk" in e.segments]
    submits = [e.seq for e in journal if e.method == "POST" and e.path.endswith(f"/klasses/{BULK_KLASS}/bulk")]
    reads = [e.seq for e in journal if e.method == "GET" and e.path.endswith("/batches")]
    polls = _bulk_polls(journal)
    assert submits and reads and polls, f"submits {submits}, result reads {reads}, status polls {len(polls)}"
    between = [e for e in journal if max(submits) < e.seq < min(reads)]
    assert between == polls, "nothing but the trigger's status polls while the task was deferred"
    assert len({e.segments[2] for e in polls}) == len(submits), "each submitted job polled"

    assert _state_changes(deployment, run, "push_orders") == ["running", "deferred", "running", "success"]
    log = _task_log(deployment, run, "push_orders")
    assert "waiting for them in the triggerer" in log and "Pausing task as DEFERRED" in log, log[-3000:]
    assert "Kustomer bulk job" in log and ": complete" in log, (
        f"the trigger's lines are in the task log:\n{log[-3000:]}"
    )
