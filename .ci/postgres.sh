# Start/stop a throwaway PostgreSQL on 127.0.0.1 for the scale-out test (sourced by .ci/run).
PG_PORT="${PG_PORT:-55432}"

start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || return 1
  fi
  local bin
  bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
  PG_DATA="$(mktemp -d)/pgdata"
  local owner=""
  if [ "$(id -u)" = "0" ]; then owner="postgres"; chown -R postgres "$(dirname "$PG_DATA")"; fi
  _pg() { if [ -n "$owner" ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  _pg "$bin/initdb" -D "$PG_DATA" -U speechprint --auth=trust >/dev/null || return 1
  _pg "$bin/pg_ctl" -D "$PG_DATA" -o "-h 127.0.0.1 -p $PG_PORT -k $(dirname "$PG_DATA")" -l "$PG_DATA/log" -w start >/dev/null || return 1
  PG_CTL="$bin/pg_ctl"
  export SPEECHPRINT_TEST_POSTGRES_URL="postgresql+psycopg://speechprint@127.0.0.1:$PG_PORT/postgres"
  echo "PostgreSQL started on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  if [ -n "${PG_CTL:-}" ] && [ -n "${PG_DATA:-}" ]; then
    if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$PG_CTL" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
    else "$PG_CTL" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; fi
  fi
}
