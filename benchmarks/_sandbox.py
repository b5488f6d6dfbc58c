"""The sandbox in a separate process, so its CPU time and memory are not charged to the code measured.

``SandboxProcess`` starts ``python benchmarks/_sandbox.py --serve`` and drives it through the
documented HTTP control endpoints (``/_sandbox/config``, ``/_sandbox/faults``, ``/_sandbox/reset``,
``/_sandbox/journal``). What those endpoints lack, and what would be too large to send as JSON
(counting a million stored orders, tallying statuses), goes over the child's stdin/stdout as one
JSON line per command.

"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import requests

SERVER_SCRIPT = Path(__file__).resolve()


class SandboxProcess:
    """A sandbox server in a child process (``with SandboxProcess() as sandbox: ...``)."""

    def __init__(self) -> None:
        self._flags: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the child)
        self.url = ""
        self.tokens: dict[str, str] = {}
        self.http = requests.Session()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> SandboxProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-u", str(SERVER_SCRIPT), "--serve", *self._flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        hello = self._read()
        self.url, self.tokens = hello["url"], hello["tokens"]
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        self.http.close()
        self._stderr.close()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    # -- addresses --------------------------------------------------------------------------------

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def token(self, vendor: str) -> str:
        return self.tokens[vendor]

    def airflow_connection(self, vendor: str, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (JSON form) for ``AIRFLOW_CONN_<ID>``."""
        connection: dict[str, Any] = {
            "conn_type": vendor,
            "host": self.base_url(vendor),
            "password": self.token(vendor),
        }
        if extra:
            connection["extra"] = extra
        return connection

    # -- documented HTTP control endpoints --------------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json()

    def configure(self, vendor: str, settings: dict[str, Any]) -> dict[str, Any]:
        return dict(self._control("POST", f"/config/{vendor}", settings))

    def inject(self, vendor: str, fault: dict[str, Any]) -> None:
        self._control("POST", f"/faults/{vendor}", fault)

    def reset(self, vendor: str | None = None) -> None:
        self._control("POST", "/reset" + (f"?vendor={vendor}" if vendor else ""))

    def journal(self, vendor: str) -> list[dict[str, Any]]:
        return list(self._control("GET", f"/journal?vendor={vendor}")["entries"])

    # -- stdin/stdout commands --------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"sandbox process exited:\n{self._stderr.read()[-3000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"sandbox command failed: {reply['error']}")
        return dict(reply)

    def command(self, **command: Any) -> dict[str, Any]:
        with self._lock:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(command) + "\n")
            self._proc.stdin.flush()
            return self._read()

    def count(self, vendor: str, klass: str | None = None) -> int:
        """Stored records (HubSpot orders, or Kustomer KObjects of one klass)."""
        return int(self.command(cmd="count", vendor=vendor, klass=klass)["count"])

    def write_statuses(self, vendor: str) -> Counter[int | None]:
        """How many journaled write requests ended with each status (the journal keeps 10,000)."""
        tally = self.command(cmd="statuses", vendor=vendor)["statuses"]
        return Counter({None if key == "null" else int(key): value for key, value in tally.items()})

    def seed_hubspot_order(self, properties: dict[str, str]) -> str:
        return str(self.command(cmd="seed_hubspot", properties=properties)["id"])

    def rss_mb(self) -> float:
        """The sandbox process's resident memory now."""
        return float(psutil.Process(self.pid).memory_info().rss) / MB

    def cpu_seconds(self) -> float:
        """User + system CPU time the sandbox process has used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


MB = 1024 * 1024


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    return float(psutil.Process().memory_info().rss) / MB


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux: ``VmHWM`` from ``/proc/self/status``. Not ``ru_maxrss``: it survives ``exec``, so a
    child started by a large parent reports the parent's size. Elsewhere ``ru_maxrss`` is all
    there is.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


# -- the child process ----------------------------------------------------------------------------


def _handle(sandbox: Any, command: dict[str, Any]) -> dict[str, Any]:
    kind = command.get("cmd")
    if kind == "count":
        state = sandbox.state(command["vendor"])
        klass = command.get("klass")
        return {"count": state.count(klass) if klass else state.count()}
    if kind == "statuses":
        writes = sandbox.writes(command["vendor"])
        tally = Counter("null" if entry.status is None else str(entry.status) for entry in writes)
        return {"statuses": dict(tally)}
    if kind == "seed_hubspot":
        return {"id": sandbox.app("hubspot").seed(command["properties"])}
    return {"error": f"unknown command {kind!r}"}


def serve() -> None:
    """Run a sandbox on a free loopback port until stdin closes; answer one JSON command per line."""
    import logging

    logging.disable(logging.CRITICAL)  # emulator errors show up as answers; keep stderr clean
    from airflow_provider_crm.sandbox import Sandbox

    sandbox = Sandbox().start()
    tokens = {vendor: sandbox.token(vendor) for vendor in sandbox.vendors}
    print(json.dumps({"url": sandbox.url, "tokens": tokens}), flush=True)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                reply = _handle(sandbox, json.loads(line))
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    if "--serve" not in sys.argv:
        sys.exit("usage: python benchmarks/_sandbox.py --serve")
    serve()
