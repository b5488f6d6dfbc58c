#!/usr/bin/env bash
# Install the provider with its test tools into .venv (or $VENV) and run lint, types and all tests.
# Optional: CONSTRAINTS=<pip constraints file> to install e.g. an older Airflow, LINT=0 to skip ruff and mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]' ${CONSTRAINTS:+--constraint "$CONSTRAINTS"}
if [ "${LINT:-1}" != 0 ]; then
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("apache-airflow", m.version("apache-airflow"))'
"$VENV/bin/pytest" "$@"
