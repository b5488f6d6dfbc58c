"""``airflow-crm-sandbox``: run the emulators as a standalone server (e.g. for DAG development).

Prints where each vendor lives, its token and a ready-to-export Airflow connection, then serves
until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_crm.sandbox.example_data import seed_example
from airflow_provider_crm.sandbox.registry import VENDORS
from airflow_provider_crm.sandbox.server import Sandbox

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _parse_token(text: str) -> tuple[str, str]:
    vendor, separator, token = text.partition("=")
    if not separator or vendor not in VENDORS or not token:
        raise argparse.ArgumentTypeError(f"expected VENDOR=TOKEN with VENDOR one of {', '.join(VENDORS)}")
    return vendor, token


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="airflow-crm-sandbox",
        description="Local stateful emulator of the Kustomer, Kaiten, MicroBase and HubSpot APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any free port (default: 8080)")
    parser.add_argument(
        "--token",
        action="append",
        type=_parse_token,
        default=[],
        metavar="VENDOR=TOKEN",
        help="override a vendor's bearer token (repeatable)",
    )
    parser.add_argument(
        "--seed-example",
        action="store_true",
        help="store the records the example DAG expects (Kaiten and MicroBase customers, a HubSpot order)",
    )
    return parser


def describe(sandbox: Sandbox) -> str:
    """Human-readable summary of a running sandbox."""
    lines = [f"CRM sandbox listening on {sandbox.url}", ""]
    width = max(len(vendor) for vendor in sandbox.vendors)
    url_width = max(len(sandbox.base_url(vendor)) for vendor in sandbox.vendors)
    for vendor in sandbox.vendors:
        url = sandbox.base_url(vendor)
        lines.append(f"  {vendor:<{width}}  {url:<{url_width}}  token: {sandbox.token(vendor)}")
    lines += [
        "",
        f"Control endpoints: {sandbox.url}/_sandbox/health, /_sandbox/journal, /_sandbox/state/<vendor>,",
        "  POST /_sandbox/reset, POST /_sandbox/faults/<vendor>, POST /_sandbox/chaos/<vendor>",
        "",
        "Airflow connections:",
    ]
    for vendor in sandbox.vendors:
        connection = json.dumps(sandbox.airflow_connection(vendor))
        lines.append(f"  export AIRFLOW_CONN_{vendor.upper()}_DEFAULT='{connection}'")
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until Ctrl-C (or SIGTERM); returns the exit code."""
    args = build_parser().parse_args(argv)
    sandbox = Sandbox(host=args.host, port=args.port, tokens=dict(args.token))
    try:
        sandbox.start()
    except OSError as exc:
        print(f"airflow-crm-sandbox: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if args.seed_example:
        seed_example(sandbox)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = (
        signal.signal(signal.SIGTERM, _on_signal) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        if args.host not in _LOOPBACK:
            print(f"WARNING: listening on {args.host}; the sandbox has no security, keep it off networks.")
        print(describe(sandbox), flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("CRM sandbox stopped.", flush=True)
    return 0
