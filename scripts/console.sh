#!/usr/bin/env bash
# Build and run the Attest server (console + ingest API + writer) as a
# background process on loopback.
#
#   scripts/console.sh build          # cargo leptos build (server binary + WASM + CSS)
#   scripts/console.sh start          # start it (reuses a running one), wait for /healthz
#   scripts/console.sh stop | status
#
# ATTEST_INSTANCE names an instance (default "console"): its pid file, log and
# URL are kept apart, so the test suite's console never touches yours.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
: "${ATTEST_INSTANCE:=console}"
export CARGO_TARGET_DIR

PID_FILE="$ATTEST_RUN_DIR/$ATTEST_INSTANCE.pid"
LOG_FILE="$ATTEST_LOG_DIR/$ATTEST_INSTANCE.log"
ADDR="127.0.0.1:$ATTEST_CONSOLE_PORT"
BIN="$CARGO_TARGET_DIR/debug/attest"

healthy() { curl -sf "http://$ADDR/healthz" >/dev/null; }

build() {
  cd "$ATTEST_ROOT"
  log "building the server and the WASM console (first build takes several minutes)"
  cargo leptos build
}

start() {
  mkdir -p "$ATTEST_RUN_DIR" "$ATTEST_LOG_DIR"
  if pid_alive "$PID_FILE" attest && [[ "$BIN" -nt "$PID_FILE" ]]; then
    log "$ATTEST_INSTANCE runs an older build; restarting it"
    stop
  fi
  if pid_alive "$PID_FILE" attest; then
    healthy || die "$ATTEST_INSTANCE is running (pid $(pid_of "$PID_FILE")) but http://$ADDR/healthz does not answer; log: $LOG_FILE"
    log "$ATTEST_INSTANCE already running (pid $(pid_of "$PID_FILE"))"
  else
    rm -f "$PID_FILE"
    [[ -x "$BIN" ]] || die "no server binary at $BIN; run scripts/console.sh build"
    if tcp_open 127.0.0.1 "$ATTEST_CONSOLE_PORT"; then
      die "port $ATTEST_CONSOLE_PORT is taken by another process; set ATTEST_CONSOLE_PORT"
    fi
    log "starting $ATTEST_INSTANCE on http://$ADDR (log: $LOG_FILE)"
    (
      cd "$ATTEST_ROOT"
      # Each instance spools to a directory of its own (one process per spool).
      ATTEST_LISTEN="$ADDR" \
        ATTEST_INGEST__SPOOL_DIR="${ATTEST_INGEST__SPOOL_DIR:-$ATTEST_DATA_DIR/spool-$ATTEST_INSTANCE}" \
        LEPTOS_OUTPUT_NAME=attest \
        LEPTOS_SITE_ROOT="$ATTEST_ROOT/target/site" \
        LEPTOS_SITE_PKG_DIR=pkg \
        LEPTOS_SITE_ADDR="$ADDR" \
        LEPTOS_ENV=PROD \
        setsid nohup "$BIN" serve >>"$LOG_FILE" 2>&1 </dev/null &
      echo $! >"$PID_FILE"
    )
    WAIT_FOR_ADDR="$ADDR" wait_for "attest ($ATTEST_INSTANCE)" "$ATTEST_STACK_TIMEOUT" "$LOG_FILE" healthy
  fi
  echo "Attest console: http://$ADDR/"
}

stop() {
  if pid_alive "$PID_FILE" attest; then
    local pid
    pid="$(pid_of "$PID_FILE")"
    log "stopping $ATTEST_INSTANCE (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

status() {
  if pid_alive "$PID_FILE" attest && healthy; then
    echo "$ATTEST_INSTANCE  up    http://$ADDR/  pid $(pid_of "$PID_FILE")  log $LOG_FILE"
  else
    echo "$ATTEST_INSTANCE  down  http://$ADDR/  log $LOG_FILE"
    return 3
  fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
