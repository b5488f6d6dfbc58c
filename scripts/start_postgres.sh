#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for Airflow's metadata database, e.g. for tests/deployment/.
#
#   scripts/start_postgres.sh DIR          initdb a cluster in DIR (absent or empty), start it on
#                                          127.0.0.1 (a free port, or $CRM_PG_PORT) with its unix socket in
#                                          DIR, create the database "airflow", print its SQLAlchemy URL
#   scripts/start_postgres.sh --stop DIR   stop that cluster (fast shutdown); DIR is left for you to remove
#
# Only the URL goes to stdout; progress goes to stderr, the server's log to DIR/postgres.log.
# PostgreSQL's server binaries are taken from /usr/lib/postgresql/<newest>/bin or PATH; when there
# are none, Debian's `postgresql` package is installed with apt-get (needs root). PostgreSQL refuses
# to run as root, so as root the cluster belongs to, and runs as, the `postgres` user (created when
# missing); DIR's parent directories must then be searchable by that user.
# The cluster trades durability for speed (fsync off): it is for tests, never for data you keep.
set -euo pipefail

say() { echo "start_postgres: $*" >&2; }
die() {
    say "$*"
    exit 1
}

find_bin_dir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && {
            echo "$dir"
            return 0
        }
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

install_postgres() {
    [ "$(id -u)" = 0 ] || die "no PostgreSQL server binaries found, and installing them needs root (apt-get install postgresql)"
    command -v apt-get >/dev/null || die "no PostgreSQL server binaries found, and no apt-get to install Debian's postgresql"
    say "no PostgreSQL server binaries found: installing Debian's postgresql package"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

# Run a command as the cluster's owner: the postgres user when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

[ $# -ge 1 ] || die "usage: $0 DIR | $0 --stop DIR"
STOP=0
if [ "$1" = "--stop" ]; then
    STOP=1
    shift
fi
[ $# -eq 1 ] || die "usage: $0 DIR | $0 --stop DIR"
case "$1" in
    *[[:space:]]*) die "DIR must not contain whitespace (it goes into the server's options): $1" ;;
esac
[ "$STOP" = 1 ] || mkdir -p "$1"
[ -d "$1" ] || die "no directory $1"
DIR="$(cd "$1" && pwd)"
DATA="$DIR/data"
OWNER=postgres

if [ "$STOP" = 1 ]; then
    [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DIR"
    BIN="$(find_bin_dir)" || die "no PostgreSQL server binaries found"
    OWNER="$(stat -c %U "$DATA")"
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >&2
    exit 0
fi

[ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
# The socket's path ($DIR/.s.PGSQL.<port>) must fit in a sockaddr_un (107 bytes).
[ "${#DIR}" -le 80 ] || die "DIR is too long for a unix socket path (${#DIR} > 80 characters): $DIR"
BIN="$(find_bin_dir)" || {
    install_postgres
    BIN="$(find_bin_dir)" || die "apt-get installed postgresql, but no initdb/pg_ctl/postgres was found"
}
say "using $BIN"

if [ "$(id -u)" = 0 ]; then
    if ! id -u "$OWNER" >/dev/null 2>&1; then
        say "creating the system user $OWNER to run the cluster"
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$OWNER"
    fi
    chown "$OWNER:" "$DIR"
    runuser -u "$OWNER" -- test -w "$DIR" ||
        die "user $OWNER cannot write $DIR: make its parent directories searchable (chmod o+x) or pick another DIR"
fi
chmod 700 "$DIR"

PASSWORD="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
PWFILE="$DIR/.initdb-password"
(umask 077 && printf '%s\n' "$PASSWORD" >"$PWFILE")
[ "$(id -u)" != 0 ] || chown "$OWNER:" "$PWFILE"
# Password (scram) over TCP, where Airflow connects; trust on the socket, which only the owner can reach.
initdb_ok=1
as_owner "$BIN/initdb" -D "$DATA" -U airflow --pwfile="$PWFILE" --auth-host=scram-sha-256 --auth-local=trust \
    -E UTF8 --locale=C --no-sync >"$DIR/initdb.log" 2>&1 || initdb_ok=0
rm -f "$PWFILE"
[ "$initdb_ok" = 1 ] || {
    cat "$DIR/initdb.log" >&2
    die "initdb failed"
}

started=0
for attempt in 1 2 3; do
    PORT="${CRM_PG_PORT:-$(free_port)}"
    if as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2; then
        started=1
        break
    fi
    say "attempt $attempt: the server did not start on port $PORT"
    [ -z "${CRM_PG_PORT:-}" ] || break
done
[ "$started" = 1 ] || {
    tail -n 20 "$DIR/postgres.log" >&2 || true
    die "PostgreSQL did not start (log: $DIR/postgres.log)"
}

as_owner "$BIN/createdb" -h "$DIR" -p "$PORT" -U airflow airflow
say "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $DATA"
echo "postgresql+psycopg2://airflow:$PASSWORD@127.0.0.1:$PORT/airflow"
