#!/usr/bin/env bash
# Build and run the Attest server (console + ingest API + writer) as a
# background process on loopback.
#
#   scripts/console.sh build          # cargo leptos build (server binary + WASM + CSS)
#   scripts/console.sh start          # start it (reuses a running one), wait for /readyz
#   scripts/console.sh stop | status
#
# ATTEST_PROFILE=release builds and runs the optimized server and the small
# WASM (cargo leptos build --release; scripts/up.sh's default); debug (the
# default here, and what scripts/test.sh uses) compiles much faster. Unset,
# start/stop/status follow the profile the running instance was started with.
# ATTEST_INSTANCE names an instance (default "console"): its pid file, log and
# URL are kept apart, so the test suite's console never touches yours.
# ATTEST_SITE_ROOT builds into and serves another site root than the profile's.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
: "${ATTEST_INSTANCE:=console}"
export CARGO_TARGET_DIR

PID_FILE="$ATTEST_RUN_DIR/$ATTEST_INSTANCE.pid"
# The profile a running instance was started with, so that a later command
# without ATTEST_PROFILE neither swaps its binary nor its site.
PROFILE_FILE="$ATTEST_RUN_DIR/$ATTEST_INSTANCE.profile"
LOG_FILE="$ATTEST_LOG_DIR/$ATTEST_INSTANCE.log"
ADDR="127.0.0.1:$ATTEST_CONSOLE_PORT"

# running_profile: the profile of the running instance (one started before
# profiles were remembered ran the debug build).
running_profile() {
  if [[ -s "$PROFILE_FILE" ]]; then tr -dc '[:lower:]' <"$PROFILE_FILE"; else echo debug; fi
}
if [[ -z "${ATTEST_PROFILE:-}" ]] && pid_alive "$PID_FILE" attest; then
  ATTEST_PROFILE="$(running_profile)"
fi
: "${ATTEST_PROFILE:=debug}"
case "$ATTEST_PROFILE" in
  release | debug) ;;
  *) die "ATTEST_PROFILE must be release or debug, not '$ATTEST_PROFILE'" ;;
esac
BIN="$CARGO_TARGET_DIR/$ATTEST_PROFILE/attest"
# Each profile has a site of its own (the WASM, JS and CSS the server
# serves): a debug build for the tests must never replace the release WASM
# under a running release server, or the other way round.
if [[ "$ATTEST_PROFILE" == release ]]; then
  SITE_ROOT="$ATTEST_ROOT/target/site-release"
else
  SITE_ROOT="$ATTEST_ROOT/target/site"
fi
# ATTEST_SITE_ROOT builds into and serves another site root: scripts/test.sh
# builds the release console into a site of its own, so that a running
# release console's WASM is never replaced under it.
SITE_ROOT="${ATTEST_SITE_ROOT:-$SITE_ROOT}"

healthy() { curl -sf --max-time 5 "http://$ADDR/healthz" >/dev/null; }

# ready BODYFILE: GET /readyz answers 200. Its body (on 503, JSON naming the
# checks that fail) is left in BODYFILE, and the status in READY_CODE.
READY_CODE=000
ready() {
  READY_CODE="$(curl -s --max-time 5 -o "$1" -w '%{http_code}' "http://$ADDR/readyz" 2>/dev/null)" || READY_CODE=000
  [[ "$READY_CODE" == 200 ]]
}

# wait_ready: until /readyz answers 200. Stops early if the process dies;
# on timeout, says what /readyz reported, not just that time ran out.
wait_ready() {
  local start=$SECONDS body
  body="$(mktemp)"
  while ! ready "$body"; do
    if ! pid_alive "$PID_FILE" attest; then
      printf 'attest: ERROR: %s (%s) exited while starting; log: %s\n' "$ATTEST_INSTANCE" "$ADDR" "$LOG_FILE" >&2
      printf 'attest: --- last 20 lines of %s ---\n' "$LOG_FILE" >&2
      tail -n 20 "$LOG_FILE" >&2 || true
      rm -f "$body"
      exit 1
    fi
    if ((SECONDS - start >= ATTEST_STACK_TIMEOUT)); then
      if [[ -s "$body" ]]; then
        printf 'attest: ERROR: %s is not ready after %ss; http://%s/readyz says (%s): %s\n' \
          "$ATTEST_INSTANCE" "$ATTEST_STACK_TIMEOUT" "$ADDR" "$READY_CODE" "$(cat "$body")" >&2
      elif [[ "$READY_CODE" != 000 ]]; then
        printf 'attest: ERROR: %s is not ready after %ss; http://%s/readyz answers %s with an empty body; log: %s\n' \
          "$ATTEST_INSTANCE" "$ATTEST_STACK_TIMEOUT" "$ADDR" "$READY_CODE" "$LOG_FILE" >&2
      else
        printf 'attest: ERROR: %s did not answer http://%s/readyz within %ss; log: %s\n' \
          "$ATTEST_INSTANCE" "$ADDR" "$ATTEST_STACK_TIMEOUT" "$LOG_FILE" >&2
        printf 'attest: --- last 20 lines of %s ---\n' "$LOG_FILE" >&2
        tail -n 20 "$LOG_FILE" >&2 || true
      fi
      rm -f "$body"
      exit 1
    fi
    sleep 1
  done
  rm -f "$body"
}

# wasm_opt_dir: where the wasm-opt that release builds use is.
#
# It is binaryen's from npm (end2end/package.json), found first on PATH:
# Debian's (binaryen 108) rewrites the export of wasm-bindgen's externref
# table to point at the function table, and the console then fails at
# start-up in the browser ("WebAssembly.Table.set(): Argument 1 is
# invalid") and never hydrates. scripts/test.sh starts the release WASM
# in Chromium (end2end/release-wasm.js) so that this cannot come back
# unnoticed.
wasm_opt_dir() {
  local bin_dir="$ATTEST_ROOT/end2end/node_modules/.bin"
  [[ -x "$bin_dir/wasm-opt" ]] ||
    die "no $bin_dir/wasm-opt (binaryen from npm, which the release WASM needs); run scripts/install.sh npm"
  echo "$bin_dir"
}

build() {
  cd "$ATTEST_ROOT"
  if [[ "$ATTEST_PROFILE" == release ]]; then
    # The server with the release profile, the WASM with [profile.wasm-release]
    # (opt-level z, LTO) and then wasm-opt: what users should meet. On 2 cores
    # the first release build takes much longer than a debug one.
    # --precompress stores a brotli (best quality) and a gzip copy beside
    # each file of the site, which the server sends as they are: about a
    # quarter smaller than compressing on the fly.
    local bin_dir
    bin_dir="$(wasm_opt_dir)"
    log "building the release server and WASM console into $SITE_ROOT (the first build takes a long while; $("$bin_dir/wasm-opt" --version))"
    PATH="$bin_dir:$PATH" LEPTOS_SITE_ROOT="$SITE_ROOT" cargo leptos build --release --precompress
  else
    log "building the debug server and WASM console into $SITE_ROOT (first build takes several minutes)"
    LEPTOS_SITE_ROOT="$SITE_ROOT" cargo leptos build
  fi
}

start() {
  mkdir -p "$ATTEST_RUN_DIR" "$ATTEST_LOG_DIR"
  if pid_alive "$PID_FILE" attest && [[ "$BIN" -nt "$PID_FILE" ]]; then
    log "$ATTEST_INSTANCE runs an older build; restarting it"
    stop
  fi
  if pid_alive "$PID_FILE" attest && [[ "$(running_profile)" != "$ATTEST_PROFILE" ]]; then
    log "$ATTEST_INSTANCE runs another profile's build; restarting it with the $ATTEST_PROFILE build"
    stop
  fi
  if pid_alive "$PID_FILE" attest; then
    healthy || die "$ATTEST_INSTANCE is running (pid $(pid_of "$PID_FILE")) but http://$ADDR/healthz does not answer; log: $LOG_FILE"
    log "$ATTEST_INSTANCE already running (pid $(pid_of "$PID_FILE"))"
  else
    rm -f "$PID_FILE" "$PROFILE_FILE"
    [[ -x "$BIN" ]] || die "no server binary at $BIN; run ATTEST_PROFILE=$ATTEST_PROFILE scripts/console.sh build"
    if tcp_open 127.0.0.1 "$ATTEST_CONSOLE_PORT"; then
      die "port $ATTEST_CONSOLE_PORT is taken by another process; set ATTEST_CONSOLE_PORT"
    fi
    log "starting $ATTEST_INSTANCE ($ATTEST_PROFILE build) on http://$ADDR (log: $LOG_FILE)"
    (
      cd "$ATTEST_ROOT"
      # Each instance spools to a directory of its own (one process per spool).
      ATTEST_LISTEN="$ADDR" \
        ATTEST_INGEST__SPOOL_DIR="${ATTEST_INGEST__SPOOL_DIR:-$ATTEST_DATA_DIR/spool-$ATTEST_INSTANCE}" \
        LEPTOS_OUTPUT_NAME=attest \
        LEPTOS_SITE_ROOT="$SITE_ROOT" \
        LEPTOS_SITE_PKG_DIR=pkg \
        LEPTOS_SITE_ADDR="$ADDR" \
        LEPTOS_ENV=PROD \
        setsid nohup "$BIN" serve >>"$LOG_FILE" 2>&1 </dev/null &
      echo $! >"$PID_FILE"
    )
    echo "$ATTEST_PROFILE" >"$PROFILE_FILE"
  fi
  # Readiness, not liveness: /healthz answers as soon as the process listens,
  # /readyz only once the broker, ClickHouse, the writer and the spool are fine.
  wait_ready
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
  rm -f "$PID_FILE" "$PROFILE_FILE"
}

status() {
  local body readiness
  if pid_alive "$PID_FILE" attest && healthy; then
    body="$(mktemp)"
    if ready "$body"; then readiness=ready; else readiness="not ready ($READY_CODE): $(cat "$body")"; fi
    rm -f "$body"
    echo "$ATTEST_INSTANCE  up    http://$ADDR/  $ATTEST_PROFILE  pid $(pid_of "$PID_FILE")  log $LOG_FILE  $readiness"
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
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
