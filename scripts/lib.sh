# shellcheck shell=bash
# Shared helpers for Attest's local-stack scripts. Source it; do not execute it.
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Safe under `set -euo pipefail`. Every variable can be overridden from the environment.

if [[ -n "${_ATTEST_LIB_SOURCED:-}" ]]; then
  return 0
fi
_ATTEST_LIB_SOURCED=1

log() { printf 'attest: %s\n' "$*" >&2; }
warn() { printf 'attest: WARNING: %s\n' "$*" >&2; }
die() {
  printf 'attest: ERROR: %s\n' "$*" >&2
  exit 1
}

# --- locations ---------------------------------------------------------------
if [[ -z "${ATTEST_ROOT:-}" ]]; then
  ATTEST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
: "${ATTEST_DATA_DIR:=$ATTEST_ROOT/.data}"
: "${ATTEST_RUN_DIR:=$ATTEST_DATA_DIR/run}"
: "${ATTEST_LOG_DIR:=$ATTEST_DATA_DIR/logs}"

# --- ports (all services bind 127.0.0.1 only) ----------------------------------
# Kafka: the client listener and the KRaft controller listener of node 1. With
# ATTEST_KAFKA_NODES=3, node N uses these ports plus 2*(N-1) (19092/19094/19096
# for clients, 19093/19095/19097 for the controllers).
: "${ATTEST_KAFKA_PORT:=19092}"
: "${ATTEST_KAFKA_CONTROLLER_PORT:=19093}"
: "${ATTEST_CLICKHOUSE_HTTP_PORT:=18123}"
: "${ATTEST_CLICKHOUSE_TCP_PORT:=19000}"
: "${ATTEST_CONSOLE_PORT:=3030}"
: "${ATTEST_STACK_TIMEOUT:=60}"

# --- the local Kafka broker (Apache Kafka in KRaft mode, scripts/stack.sh) -------
# Its jars come from Maven Central (scripts/kafka/pom.xml, scripts/install.sh kafka).
KAFKA_VERSION="4.1.1"
: "${ATTEST_KAFKA_HOME:=$HOME/.cache/attest/kafka-$KAFKA_VERSION}"
# 1: one combined broker+controller. 3: a three-node cluster like production's
# docker-compose.yml (replication factor 3, min.insync.replicas 2). Unset: what
# the last `stack.sh up` started (so `stack.sh down kafka-2`, the console and
# the tests find a running three-node cluster without the variable), else 1.
if [[ -z "${ATTEST_KAFKA_NODES:-}" && -s "$ATTEST_RUN_DIR/kafka-nodes" ]]; then
  ATTEST_KAFKA_NODES="$(tr -dc '0-9' <"$ATTEST_RUN_DIR/kafka-nodes")"
fi
: "${ATTEST_KAFKA_NODES:=1}"

# --- Apache Avro's Java library (its reference compatibility checker) -------------
# server/tests/avro_evolutions.rs runs org.apache.avro.SchemaCompatibility from these
# jars (scripts/avro/pom.xml, scripts/install.sh avro) over the evolution table.
AVRO_JAVA_VERSION="1.12.1"
: "${ATTEST_AVRO_JAVA_LIBS:=$HOME/.cache/attest/avro-java-$AVRO_JAVA_VERSION/libs}"

# kafka_port NODE / kafka_controller_port NODE: the node's ports (node 1..3).
kafka_port() { echo $((ATTEST_KAFKA_PORT + 2 * ($1 - 1))); }
kafka_controller_port() { echo $((ATTEST_KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }

# --- what the Rust server and the tests read -----------------------------------
if [[ -z "${ATTEST_KAFKA__BROKERS:-}" ]]; then
  ATTEST_KAFKA__BROKERS="127.0.0.1:$ATTEST_KAFKA_PORT"
  for ((_n = 2; _n <= ATTEST_KAFKA_NODES; _n++)); do
    ATTEST_KAFKA__BROKERS+=",127.0.0.1:$(kafka_port "$_n")"
  done
  unset _n
fi
: "${ATTEST_CLICKHOUSE__URL:=http://127.0.0.1:$ATTEST_CLICKHOUSE_HTTP_PORT}"
# On three nodes Attest's topics are replicated as in production.
if ((ATTEST_KAFKA_NODES == 3)); then
  : "${ATTEST_KAFKA__REPLICATION_FACTOR:=3}"
  : "${ATTEST_KAFKA__MIN_INSYNC_REPLICAS:=2}"
  export ATTEST_KAFKA__REPLICATION_FACTOR ATTEST_KAFKA__MIN_INSYNC_REPLICAS
fi

export ATTEST_ROOT ATTEST_DATA_DIR ATTEST_RUN_DIR ATTEST_LOG_DIR \
  ATTEST_KAFKA_PORT ATTEST_KAFKA_CONTROLLER_PORT ATTEST_KAFKA_HOME ATTEST_KAFKA_NODES \
  ATTEST_CLICKHOUSE_HTTP_PORT ATTEST_CLICKHOUSE_TCP_PORT \
  ATTEST_CONSOLE_PORT ATTEST_STACK_TIMEOUT ATTEST_KAFKA__BROKERS ATTEST_CLICKHOUSE__URL \
  ATTEST_AVRO_JAVA_LIBS

# Put cargo-installed binaries (cargo-leptos, wasm-bindgen) on PATH.
ensure_cargo_bin() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) [[ -d "$bin" ]] && PATH="$bin:$PATH" ;;
  esac
  export PATH
}
ensure_cargo_bin

have() { command -v "$1" >/dev/null 2>&1; }

# Run as root, or through sudo when we are not root.
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# pid_alive FILE [PATTERN]: true if FILE holds the pid of a live process (whose command
# line contains PATTERN, if given: guards against a recycled pid after a reboot).
pid_alive() {
  local file="$1" pattern="${2:-}" pid
  [[ -f "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$pattern" && -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  fi
  return 0
}

# pid_of FILE: print the pid stored in FILE (empty if none).
pid_of() {
  if [[ -f "$1" ]]; then tr -dc '0-9' <"$1" 2>/dev/null || true; fi
}

# running PID: the process exists and has not exited (an exited process that
# its parent has not reaped yet, a zombie, still answers kill -0).
running() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# --- supervision (scripts/supervise.sh) ----------------------------------------
# A supervised service runs as the child of scripts/supervise.sh NAME, which
# starts it again when it dies, as docker's restart policy does in production.
# $ATTEST_RUN_DIR/NAME.supervisor.pid names the supervisor, NAME.pid the
# service, NAME.cmd the service's command.

supervisor_pid_file() { echo "$ATTEST_RUN_DIR/$1.supervisor.pid"; }

# supervisor_pid NAME: print the pid of NAME's live supervisor; false if none.
supervisor_pid() {
  local f pid
  f="$(supervisor_pid_file "$1")"
  # The trailing space keeps kafka's supervisor apart from kafka-2's.
  pid_alive "$f" "supervise.sh $1 " || return 1
  pid="$(pid_of "$f")"
  running "$pid" || return 1
  echo "$pid"
}

# start_supervised NAME LOGFILE WORKDIR CMD...: run CMD in WORKDIR under a
# supervisor of its own (own session, survives this shell), output to LOGFILE.
# The command goes through a file, not the supervisor's arguments, so that
# only the service's own command line contains it.
start_supervised() {
  local name="$1" logfile="$2" workdir="$3"
  shift 3
  mkdir -p "$ATTEST_RUN_DIR" "$(dirname "$logfile")"
  printf '%s\0' "$@" >"$ATTEST_RUN_DIR/$name.cmd"
  (cd "$workdir" && exec setsid nohup bash "$ATTEST_ROOT/scripts/supervise.sh" "$name" \
    >>"$logfile" 2>&1 </dev/null 9>&-) &
  echo $! >"$(supervisor_pid_file "$name")"
}

# stop_supervisor NAME: tell NAME's supervisor to stop. It passes SIGTERM on
# to the service, waits for it and exits without a restart; the caller
# waits for the service (and may SIGKILL it). False if no supervisor runs.
stop_supervisor() {
  local pid
  pid="$(supervisor_pid "$1")" || return 1
  kill -TERM "$pid" 2>/dev/null || true
}

# wait_supervisor_gone NAME TIMEOUT: wait until NAME's supervisor has exited
# (it does once its service has); SIGKILL it after TIMEOUT seconds.
wait_supervisor_gone() {
  local f pid start=$SECONDS
  f="$(supervisor_pid_file "$1")"
  pid="$(pid_of "$f")"
  if [[ -n "$pid" ]] && pid_alive "$f" "supervise.sh $1 "; then
    while running "$pid"; do
      if ((SECONDS - start >= $2)); then
        warn "the supervisor of $1 (pid $pid) did not exit within $2s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.2
    done
  fi
  rm -f "$f" "$ATTEST_RUN_DIR/$1.cmd"
}

# tcp_open HOST PORT: true if a TCP connect succeeds within ~1 s.
tcp_open() {
  # shellcheck disable=SC2016 # $1/$2 expand in the child bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for NAME TIMEOUT_SECONDS LOGFILE CMD...
# Retries CMD once a second until it succeeds; on timeout dies naming the service,
# its address (set WAIT_FOR_ADDR=host:port, or put it in NAME) and its log file, with the log's last 20 lines.
wait_for() {
  local name="$1" timeout="$2" logfile="$3"
  shift 3
  local start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      printf 'attest: ERROR: %s did not become healthy within %ss%s; log: %s\n' \
        "$name" "$timeout" "${WAIT_FOR_ADDR:+ at $WAIT_FOR_ADDR}" "$logfile" >&2
      if [[ -f "$logfile" ]]; then
        printf 'attest: --- last 20 lines of %s ---\n' "$logfile" >&2
        tail -n 20 "$logfile" >&2 || true
      fi
      exit 1
    fi
    sleep 1
  done
}
