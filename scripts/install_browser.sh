#!/usr/bin/env bash
# Install what the browser tests (tests/ui, `pytest -m ui`) need: Debian's chromium package and
# Playwright for Python in the virtualenv given as $1 (default .venv; created if missing).
# Idempotent: installs only what is missing. Playwright drives the system chromium
# (/usr/bin/chromium) and never downloads a browser of its own.
# A failed install is reported but not fatal: the browser tests then skip and say what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${VENV:-.venv}}"
PYTHON="${PYTHON:-python3}"
PLAYWRIGHT_REQUIREMENT="playwright>=1.40" # keep in step with the `ui` extra in pyproject.toml
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
missing=()

# -- chromium (Debian package) ----------------------------------------------------------------
chromium_path() {
    local candidate
    for candidate in "${CRM_UI_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium 2>/dev/null)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if path="$(chromium_path)"; then
    echo "chromium: already installed at $path"
else
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            echo "chromium: not installed, and installing it needs root (no sudo here): apt-get install -y chromium" >&2
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "chromium: not installed and apt-get is not available; install a Chromium and set CRM_UI_CHROMIUM" >&2
        missing+=(chromium)
    elif [ "$(id -u)" != 0 ] && [ "${#sudo[@]}" = 0 ]; then
        missing+=(chromium)
    else
        echo "chromium: installing Debian's chromium package with apt-get"
        if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
                >/dev/null; then
            path="$(chromium_path)" && echo "chromium: installed at $path"
        fi
        chromium_path >/dev/null || {
            echo "chromium: apt-get could not install it (see above)" >&2
            missing+=(chromium)
        }
    fi
fi

# -- Playwright for Python (PyPI) in the virtualenv ---------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    echo "playwright: creating the virtualenv $VENV"
    "$PYTHON" -m venv "$VENV" || true
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "playwright: no virtualenv at $VENV and none could be created" >&2
    missing+=(playwright)
elif "$VENV/bin/python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
    echo "playwright: already installed in $VENV ($("$VENV/bin/python" -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p'))"
else
    echo "playwright: installing $PLAYWRIGHT_REQUIREMENT into $VENV (no browser download)"
    if ! "$VENV/bin/python" -m pip install --quiet "$PLAYWRIGHT_REQUIREMENT"; then
        echo "playwright: pip install failed (see above)" >&2
        missing+=(playwright)
    fi
fi

if [ "${#missing[@]}" != 0 ]; then
    echo "install_browser.sh: missing ${missing[*]}; the browser tests (pytest -m ui) will skip and say so" >&2
else
    echo "install_browser.sh: ready; run the browser tests with: $VENV/bin/pytest -m ui"
fi
exit 0
