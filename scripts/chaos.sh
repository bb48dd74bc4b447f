#!/usr/bin/env bash
# The kill -9 campaign of issue 12, repeatable and hands-off: the Attest
# server, the Kafka broker and ClickHouse are each killed with SIGKILL under a
# steady load, and only their supervisors (scripts/supervise.sh, standing in
# for production's docker restart policy) bring them back. Nobody restarts
# anything by hand. Then every event that got a 202 must be in ClickHouse
# exactly once.
#
#   scripts/chaos.sh [--minutes N] [--rate EVENTS_PER_S]
#
# --minutes: how long the load runs (default 2; at least 1.5, so that each
# service is killed once); --rate: events per second (default 200, which the
# local stack takes easily). The whole run takes the load's time plus about
# a minute and a half (stack restarts, recovery, checks).
#
# What it does:
#   1. restarts the stack supervised (ATTEST_SUPERVISE=1 scripts/stack.sh up)
#   2. starts its own `attest serve` (the debug build, $CARGO_TARGET_DIR/debug/attest)
#      under a supervisor: port $ATTEST_CHAOS_PORT (3049), topics
#      attest.chaos.<run>.*, consumer group attest-chaos-<run>, database
#      attest_chaos_<run> (earlier runs' databases are dropped), spool
#      .data/spool-chaos, no API keys
#   3. scripts/chaos_load.py posts batches at the rate, retrying a batch that
#      got no 202 with the same event ids; only 202'd ids count as acknowledged
#   4. every 25 s, round robin, kill -9 of the server, the broker, ClickHouse
#      (the service process, never its supervisor), and waits for it to be back
#   5. waits (at most 5 minutes) until every acknowledged event is stored,
#      OPTIMIZE ... FINAL, counts rows per (tenant_id, event_id)
#   6. stops its server and puts the stack back in the mode it found it in
#      (normally unsupervised), up
#
# The last line of its output is
#   chaos: acknowledged A, stored once S, missing M, duplicated D
# It exits non-zero if M or D is not 0, or a killed service did not come back.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
: "${ATTEST_CHAOS_PORT:=3049}"

usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; }

MINUTES=2
RATE=200
while (($#)); do
  case "$1" in
    --minutes)
      MINUTES="${2:?--minutes needs a value}"
      shift 2
      ;;
    --rate)
      RATE="${2:?--rate needs a value}"
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument '$1'"
      ;;
  esac
done
[[ "$MINUTES" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--minutes takes a number, not '$MINUTES'"
if [[ ! "$RATE" =~ ^[0-9]+$ ]] || ((RATE == 0)); then
  die "--rate takes a whole number of events per second, not '$RATE'"
fi
LOAD_S="$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')"
FIRST_KILL=20
KILL_EVERY=25
# The last kill leaves the load at least this long to run on.
KILL_MARGIN=15
((LOAD_S >= FIRST_KILL + 2 * KILL_EVERY + KILL_MARGIN)) ||
  die "--minutes $MINUTES is too short: each of the three services is killed once, ${KILL_EVERY} s apart; use at least 1.5"
# A batch of 50 at 200/s is 4 requests a second.
BATCH=50
((RATE < BATCH)) && BATCH="$RATE"

BIN="$CARGO_TARGET_DIR/debug/attest"
[[ -x "$BIN" ]] || die "no attest debug binary at $BIN: build it first (scripts/test.sh does, or cargo build -p server --bin attest)"
have python3 || die "python3 not found; run scripts/install.sh apt"
have curl || die "curl not found; run scripts/install.sh apt"
STACK="$here/stack.sh"
ADDR="127.0.0.1:$ATTEST_CHAOS_PORT"
if tcp_open 127.0.0.1 "$ATTEST_CHAOS_PORT"; then
  die "port $ATTEST_CHAOS_PORT is taken (another chaos run?); set ATTEST_CHAOS_PORT"
fi

RUN="$(date -u +%Y%m%d%H%M%S)"
NAME=chaos-attest
DB="attest_chaos_$RUN"
WORK="$ATTEST_DATA_DIR/chaos"
ACKED="$WORK/acked-$RUN.tsv"
SERVER_LOG="$ATTEST_LOG_DIR/$NAME.log"
mkdir -p "$WORK" "$ATTEST_RUN_DIR" "$ATTEST_LOG_DIR"

if ((ATTEST_KAFKA_NODES == 3)); then
  KAFKA_SERVICES=(kafka-1 kafka-2 kafka-3)
else
  KAFKA_SERVICES=(kafka)
fi
STACK_SERVICES=("${KAFKA_SERVICES[@]}" clickhouse)

# Times in microseconds since the epoch (bash 5's EPOCHREALTIME).
now_us() {
  local t="$EPOCHREALTIME"
  echo "${t/[.,]/}"
}
# secs FROM_US [TO_US]: the seconds in between, one decimal.
secs() {
  local d=$((${2:-$(now_us)} - $1))
  printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}
# t: seconds since the load began.
t() { echo "t=$((($(now_us) - load_start) / 1000000))s"; }
# epoch FROM_US: epoch seconds, for chaos_load.py.
epoch() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
say() { printf 'chaos: %s\n' "$*"; }

ch_query() { curl -sf --max-time 30 "$ATTEST_CLICKHOUSE__URL/" --data-binary "$1"; }

# --- the stack's mode, to put back at the end -----------------------------------
was_supervised=0
for s in "${STACK_SERVICES[@]}"; do
  if supervisor_pid "$s" >/dev/null; then was_supervised=1; fi
done

load_pid=""
attest_pid() { pid_of "$ATTEST_RUN_DIR/$NAME.pid"; }

stop_attest() {
  local pid start=$SECONDS
  pid="$(attest_pid)"
  stop_supervisor "$NAME" || true
  if [[ -n "$pid" ]]; then
    while running "$pid"; do
      if ((SECONDS - start >= 30)); then
        warn "$NAME (pid $pid) did not stop within 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  fi
  wait_supervisor_gone "$NAME" 10
  rm -f "$ATTEST_RUN_DIR/$NAME.pid"
}

cleanup() {
  local rc=$?
  trap - EXIT
  if [[ -n "$load_pid" ]] && running "$load_pid"; then kill -TERM "$load_pid" 2>/dev/null || true; fi
  log "stopping the chaos server"
  stop_attest || warn "could not stop $NAME; see $SERVER_LOG"
  if ((was_supervised)); then
    log "the stack was supervised when the run began; leaving it so"
    "$STACK" up || rc=1
  else
    log "putting the stack back in its normal, unsupervised mode"
    { "$STACK" down && ATTEST_SUPERVISE=0 "$STACK" up; } || {
      warn "could not restart the stack unsupervised; see scripts/stack.sh status"
      rc=1
    }
  fi
  exit "$rc"
}
trap cleanup EXIT

# --- 1. the stack, supervised -----------------------------------------------------
if ((was_supervised)); then
  log "the stack is already supervised"
  "$STACK" up
else
  log "restarting the stack under supervisors"
  "$STACK" down
  ATTEST_SUPERVISE=1 "$STACK" up
fi

# --- 2. our own attest serve, supervised -------------------------------------------
for old in $(ch_query "SHOW DATABASES" | grep -E '^attest_chaos_[0-9]+$' || true); do
  ch_query "DROP DATABASE IF EXISTS $old" >/dev/null || warn "could not drop the old database $old"
done
rm -rf "$ATTEST_DATA_DIR/spool-chaos"
(
  export ATTEST_LISTEN="$ADDR"
  export ATTEST_KAFKA__TOPIC_PREFIX="attest.chaos.$RUN"
  export ATTEST_KAFKA__CONSUMER_GROUP="attest-chaos-$RUN"
  export ATTEST_CLICKHOUSE__DATABASE="$DB"
  export ATTEST_INGEST__SPOOL_DIR="$ATTEST_DATA_DIR/spool-chaos"
  # The load generator sends tenants of its own; ingest keys are covered by
  # server/tests/ingest_keys.rs.
  export ATTEST_INGEST__REQUIRE_API_KEY=false
  # As scripts/console.sh runs the server (the console pages are not used).
  export LEPTOS_OUTPUT_NAME=attest LEPTOS_SITE_ROOT="$ATTEST_ROOT/target/site" \
    LEPTOS_SITE_PKG_DIR=pkg LEPTOS_SITE_ADDR="$ADDR" LEPTOS_ENV=PROD
  start_supervised "$NAME" "$SERVER_LOG" "$ATTEST_ROOT" "$BIN" serve
)

http_code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://$ADDR$1" 2>/dev/null || true; }
# The server is back when /readyz answers 200. A build that does not serve
# /readyz (a branch from before it: 404, or the console's redirect to
# /login) is waited for on /healthz instead, and the run says so.
READY_PATH=/readyz
ready() { [[ "$(http_code "$READY_PATH")" == 200 ]]; }
start_wait=$SECONDS
until [[ "$(http_code /healthz)" == 200 ]] && ready; do
  if [[ "$(http_code /healthz)" == 200 && "$READY_PATH" == /readyz ]]; then
    code="$(http_code /readyz)"
    case "$code" in
      404 | 30[0-9])
        warn "this attest build answers /readyz with $code, not readiness; waiting for /healthz instead"
        READY_PATH=/healthz
        continue
        ;;
    esac
  fi
  if ((SECONDS - start_wait >= 120)); then
    answer="$(curl -s --max-time 5 -w ' (HTTP %{http_code})' "http://$ADDR$READY_PATH" 2>&1 || true)"
    printf 'attest: ERROR: %s is not ready after 120 s; %s: %s\n' "$NAME" "$READY_PATH" "${answer:-no answer}" >&2
    printf 'attest: --- last 20 lines of %s ---\n' "$SERVER_LOG" >&2
    tail -n 20 "$SERVER_LOG" >&2 || true
    exit 1
  fi
  sleep 1
done
say "run $RUN: ${LOAD_S} s of load at $RATE events/s (batches of $BATCH) against http://$ADDR ($BIN; back = $READY_PATH 200),"
say "  topics attest.chaos.$RUN.*, database $DB; kill -9 every ${KILL_EVERY} s from t=${FIRST_KILL} s: server, broker, ClickHouse"

# --- 3. load ----------------------------------------------------------------------------
load_start="$(now_us)"
python3 "$here/chaos_load.py" load --url "http://$ADDR" --seconds "$LOAD_S" --rate "$RATE" \
  --batch "$BATCH" --run "$RUN" --acked "$ACKED" &
load_pid=$!

# --- 4. kills -------------------------------------------------------------------------
# victim_pid VICTIM: the pid of the service process (never the supervisor).
victim_pid() {
  case "$1" in
    attest)
      local f="$ATTEST_RUN_DIR/$NAME.pid"
      pid_alive "$f" "$BIN serve" && pid_of "$f"
      ;;
    *) "$STACK" pid "$1" 2>/dev/null ;;
  esac
}
# victim_ok VICTIM: serving again (the server ready, Kafka taking a write, ClickHouse answering).
victim_ok() {
  case "$1" in
    attest) ready ;;
    *) "$STACK" status "$1" >/dev/null 2>&1 ;;
  esac
}

victims=()
kafka_turn=0
for ((t = FIRST_KILL; t <= LOAD_S - KILL_MARGIN; t += KILL_EVERY)); do
  case $((${#victims[@]} % 3)) in
    0) victims+=(attest) ;;
    1)
      victims+=("${KAFKA_SERVICES[$((kafka_turn % ${#KAFKA_SERVICES[@]}))]}")
      kafka_turn=$((kafka_turn + 1))
      ;;
    2) victims+=(clickhouse) ;;
  esac
done

not_back=()
kills=()
last_kill=""
last_victim=""
for i in "${!victims[@]}"; do
  victim="${victims[$i]}"
  at=$((FIRST_KILL + i * KILL_EVERY))
  while running "$load_pid" && (($(now_us) - load_start < at * 1000000)); do
    sleep 0.5
  done
  running "$load_pid" || {
    warn "the load generator ended before t=${at}s"
    break
  }
  if ! pid="$(victim_pid "$victim")"; then
    say "$(t): $victim is not running before its kill (still down from earlier?)"
    not_back+=("$victim")
    continue
  fi
  kill -KILL "$pid" 2>/dev/null || true
  killed_at="$(now_us)"
  last_kill="$killed_at"
  last_victim="$victim"
  kills+=("$victim")
  # Planned for t=${at}s; later if the previous victim took longer to come back.
  say "$(t): kill -9 $victim (pid $pid)"
  back=0
  while (($(now_us) - killed_at < 180000000)); do
    if new="$(victim_pid "$victim")" && [[ "$new" != "$pid" ]] && victim_ok "$victim"; then
      say "$(t): $victim is back as pid $new, serving $(secs "$killed_at") s after the kill"
      back=1
      break
    fi
    sleep 0.5
  done
  if ((!back)); then
    say "$(t): $victim did not come back within 180 s"
    not_back+=("$victim")
  fi
done

load_rc=0
wait "$load_pid" || load_rc=$?
load_pid=""
load_end="$(now_us)"
((load_rc == 0)) || warn "the load generator exited with status $load_rc"

# Every stack service and our server must be serving at the end, whether or
# not it was killed.
for s in attest "${STACK_SERVICES[@]}"; do
  victim_ok "$s" || {
    say "$s is not serving after the run"
    not_back+=("$s")
  }
done
counted=""
if ((${#kills[@]})); then
  counted="$(printf '%s\n' "${kills[@]}" | sort | uniq -c | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')"
fi
if ((${#not_back[@]})); then
  say "kills: ${counted:-none}; NOT back: ${not_back[*]}"
else
  say "kills: $counted; every service came back without help"
fi
[[ -n "$last_kill" ]] && say "last kill: $last_victim, $(secs "$last_kill" "$load_end") s before the load ended"

# --- 5. verify -----------------------------------------------------------------------
verify_rc=0
python3 "$here/chaos_load.py" verify --clickhouse "$ATTEST_CLICKHOUSE__URL" --database "$DB" \
  --acked "$ACKED" --timeout 300 --metrics "http://$ADDR/metrics" \
  ${last_kill:+--last-kill "$(epoch "$last_kill")"} --load-end "$(epoch "$load_end")" || verify_rc=$?

((verify_rc == 0 && load_rc == 0 && ${#not_back[@]} == 0 && ${#kills[@]} >= 3))
