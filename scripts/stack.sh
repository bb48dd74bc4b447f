#!/usr/bin/env bash
# Attest's local stack: Apache Kafka (KRaft mode) and ClickHouse as plain
# background processes, bound to 127.0.0.1 only. No systemd, no docker.
#
#   scripts/stack.sh up     [kafka|clickhouse]   start (reuses running services)
#   scripts/stack.sh down   [kafka|clickhouse]   stop (SIGTERM; SIGKILL after 30 s for Kafka, 20 s for ClickHouse)
#   scripts/stack.sh restart [kafka|clickhouse]
#   scripts/stack.sh reset  [kafka|clickhouse]   stop, delete the data, start empty
#   scripts/stack.sh status [kafka|clickhouse]   exit 0 if all up, 3 otherwise
#   scripts/stack.sh logs   [-f] [kafka|clickhouse]
#   scripts/stack.sh pid    kafka|clickhouse          the service's pid (exit 1 if not running)
#
# ATTEST_SUPERVISE=1 ... up runs each service under scripts/supervise.sh, which
# starts it again within a second or two whenever it dies (kill -9 included),
# as docker's restart policy does in production; 'down' stops supervisor and
# service. The mode is remembered while supervisors run (.data/run/supervise).
# ATTEST_KAFKA_NODES=3 runs a three-node Kafka cluster (kafka-1, kafka-2, kafka-3,
# each broker and controller); "kafka" then means all three, "kafka-2" one of them.
# "tansu" (the broker before Kafka) is accepted as an old name for kafka.
# pid files: $ATTEST_RUN_DIR, logs: $ATTEST_LOG_DIR, data: $ATTEST_DATA_DIR/{kafka,clickhouse}.
# Health timeout: $ATTEST_STACK_TIMEOUT seconds (default 60).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Only used when a node's storage is formatted: the id then lives in the node's
# data directory (cluster.id and data/meta.properties). Kafka wants a UUID in
# base64url (22 characters); this one is base64url("attest-local-kaf").
: "${ATTEST_KAFKA_CLUSTER_ID:=YXR0ZXN0LWxvY2FsLWthZg}"
# 1 GB of heap: enough for a test suite's topics; ClickHouse and Rust builds
# share the machine.
: "${ATTEST_KAFKA_HEAP_OPTS:=-Xms512m -Xmx1g}"

case "$ATTEST_KAFKA_NODES" in
  1) KAFKA_SERVICES=(kafka) ;;
  3) KAFKA_SERVICES=(kafka-1 kafka-2 kafka-3) ;;
  *) die "ATTEST_KAFKA_NODES must be 1 or 3 (a KRaft quorum of 2 tolerates no failure), not '$ATTEST_KAFKA_NODES'" ;;
esac
SERVICES=("${KAFKA_SERVICES[@]}" clickhouse)

# Supervised or not. Unset: as the running stack is (its supervisors left a
# note), else not. A note without a live supervisor (say, after a reboot) is
# stale and ignored.
SUPERVISE_FILE="$ATTEST_RUN_DIR/supervise"
any_supervisor() {
  local s
  for s in "${SERVICES[@]}"; do supervisor_pid "$s" >/dev/null && return 0; done
  return 1
}
if [[ -z "${ATTEST_SUPERVISE:-}" && -s "$SUPERVISE_FILE" ]] && any_supervisor; then
  ATTEST_SUPERVISE="$(tr -dc '0-9' <"$SUPERVISE_FILE")"
fi
: "${ATTEST_SUPERVISE:=0}"
case "$ATTEST_SUPERVISE" in
  0 | 1) ;;
  *) die "ATTEST_SUPERVISE must be 0 or 1, not '$ATTEST_SUPERVISE'" ;;
esac
KAFKA_LIBS="$ATTEST_KAFKA_HOME/libs"
CH_DIR="$ATTEST_DATA_DIR/clickhouse"
PROBE="$ATTEST_ROOT/scripts/kafka_probe.py"

is_kafka() { [[ "$1" == kafka || "$1" == kafka-[1-3] ]]; }
# kafka_node SVC: the node id of a Kafka service (kafka is node 1).
kafka_node() { if [[ "$1" == kafka ]]; then echo 1; else echo "${1#kafka-}"; fi; }
svc_dir() { echo "$ATTEST_DATA_DIR/$1"; }
pid_file() { echo "$ATTEST_RUN_DIR/$1.pid"; }
stop_timeout() { if is_kafka "$1"; then echo 30; else echo 20; fi; }

log_file() {
  case "$1" in
    clickhouse) echo "$ATTEST_LOG_DIR/clickhouse-server.log" ;;
    *) echo "$ATTEST_LOG_DIR/$1.log" ;;
  esac
}
# Where the process's own stdout/stderr go (JVM errors, log4j2 problems, the formatter).
stdout_log() { echo "$ATTEST_LOG_DIR/$1-stdout.log"; }
# Logs worth tailing for a service.
log_files() {
  case "$1" in
    clickhouse)
      echo "$ATTEST_LOG_DIR/clickhouse-server.log"
      echo "$ATTEST_LOG_DIR/clickhouse-server.err.log"
      echo "$ATTEST_LOG_DIR/clickhouse-stdout.log"
      ;;
    *)
      log_file "$1"
      stdout_log "$1"
      ;;
  esac
}
addr() {
  local n
  case "$1" in
    clickhouse) echo "http://127.0.0.1:$ATTEST_CLICKHOUSE_HTTP_PORT (tcp 127.0.0.1:$ATTEST_CLICKHOUSE_TCP_PORT)" ;;
    *)
      n="$(kafka_node "$1")"
      echo "127.0.0.1:$(kafka_port "$n") (controller 127.0.0.1:$(kafka_controller_port "$n"))"
      ;;
  esac
}
# Every port the service listens on: any of them open means something is running.
svc_ports() {
  local n
  case "$1" in
    clickhouse) echo "$ATTEST_CLICKHOUSE_HTTP_PORT $ATTEST_CLICKHOUSE_TCP_PORT" ;;
    *)
      n="$(kafka_node "$1")"
      echo "$(kafka_port "$n") $(kafka_controller_port "$n")"
      ;;
  esac
}

# ---------------------------------------------------------------------------
# Which process is the service? Its command line says so: the pid file is only
# a shortcut. Once a pid file named a dead process while the broker it had
# started was alive, the script took the broker for dead, and a reset then
# deleted the live broker's data. So a service is found by what it runs
# (this data directory's config file), never declared dead because of a pid
# file alone, and no pid file of a live service is ever removed.

# cmd_pattern SVC: text that only this service's command line contains.
cmd_pattern() {
  case "$1" in
    clickhouse) echo "--config-file=$CH_DIR/config.xml" ;;
    *) echo "kafka.Kafka $(svc_dir "$1")/server.properties" ;;
  esac
}

# find_pid PATTERN: the pid of a process (not this shell) whose command line
# contains PATTERN. Reads /proc without forking, so no helper process (whose
# own arguments would hold PATTERN) is ever found.
find_pid() {
  local pattern="$1" d pid cmd part
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [[ "$pid" == "$$" || "$pid" == "${BASHPID:-}" ]] && continue
    cmd=""
    while IFS= read -r -d '' part; do cmd+="$part "; done 2>/dev/null <"$d/cmdline" || true
    if [[ "$cmd" == *"$pattern"* ]]; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# svc_pid SVC: print the pid of the live process running SVC; false if none.
# A live one missing from its pid file (file lost or stale) is written back.
svc_pid() {
  local svc="$1" pf pattern pid
  pf="$(pid_file "$svc")"
  pattern="$(cmd_pattern "$svc")"
  if pid_alive "$pf" "$pattern"; then
    pid_of "$pf"
    return 0
  fi
  pid="$(find_pid "$pattern")" || return 1
  mkdir -p "$ATTEST_RUN_DIR"
  echo "$pid" >"$pf"
  warn "$svc runs as pid $pid, which its pid file did not say; pid file rewritten"
  echo "$pid"
}
svc_alive() { svc_pid "$1" >/dev/null 2>&1; }

# drop_pid_file SVC: remove the pid file of a service that is not running.
drop_pid_file() {
  local pf
  pf="$(pid_file "$1")"
  [[ -f "$pf" ]] || return 0
  svc_alive "$1" && die "$1 is running (pid $(pid_of "$pf")); not removing its pid file"
  rm -f "$pf"
}

# port_in_use SVC: print the first of the service's ports that answers.
port_in_use() {
  local port
  for port in $(svc_ports "$1"); do
    if tcp_open 127.0.0.1 "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------------------
# health checks

# kafka_healthy SVC [quick]: quick is one ApiVersions round trip (for the start-up
# wait); otherwise scripts/kafka_probe.py produces (acks=all, idempotent) and
# fetches a message through this node. Reasons go to stderr.
kafka_healthy() {
  local svc="$1" mode="${2:-full}" n port
  n="$(kafka_node "$svc")"
  port="$(kafka_port "$n")"
  have python3 || {
    printf 'python3 not found: cannot check that the broker takes writes\n' >&2
    return 1
  }
  if [[ "$mode" == quick ]]; then
    python3 "$PROBE" --api-versions --bootstrap "127.0.0.1:$port" --timeout 2 >/dev/null
  else
    python3 "$PROBE" --bootstrap "127.0.0.1:$port" --timeout 10 \
      --expect-broker "$n" --replication-factor "$ATTEST_KAFKA_NODES" >/dev/null
  fi
}

clickhouse_healthy() {
  local base="http://127.0.0.1:$ATTEST_CLICKHOUSE_HTTP_PORT"
  [[ "$(curl -sf --max-time 2 "$base/ping" 2>/dev/null)" == "Ok." ]] || {
    echo "no answer to $base/ping" >&2
    return 1
  }
  [[ -n "$(curl -sf --max-time 5 "$base/" --data-binary 'SELECT version()' 2>/dev/null)" ]] || {
    echo "SELECT version() failed" >&2
    return 1
  }
}

healthy() {
  case "$1" in
    clickhouse) clickhouse_healthy ;;
    *) kafka_healthy "$1" "${2:-full}" ;;
  esac
}

# ---------------------------------------------------------------------------
# Kafka configuration: one combined broker+controller per node, KRaft with a
# static quorum (controller.quorum.voters), as production's docker-compose.yml.

kafka_voters() {
  local n voters=""
  for ((n = 1; n <= ATTEST_KAFKA_NODES; n++)); do
    voters+="${voters:+,}$n@127.0.0.1:$(kafka_controller_port "$n")"
  done
  echo "$voters"
}

write_kafka_config() {
  local svc="$1" dir n port cport rf isr
  dir="$(svc_dir "$svc")"
  n="$(kafka_node "$svc")"
  port="$(kafka_port "$n")"
  cport="$(kafka_controller_port "$n")"
  # One node: everything has one replica. Three: as production (3 replicas, 2 in sync).
  if ((ATTEST_KAFKA_NODES == 1)); then rf=1 isr=1; else rf=3 isr=2; fi
  mkdir -p "$dir/data" "$ATTEST_LOG_DIR"
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/stack.sh; edits are overwritten on the next 'up'.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(kafka_voters)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data

num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# Audit data: never elect a leader that may have lost acknowledged writes, and
# never create a topic by accident (Attest creates its own), as in production.
unclean.leader.election.enable=false
auto.create.topics.enable=false

# Tests start consumer groups all the time; do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0

# Keep a week, whatever the size (Kafka's defaults, stated so that nobody
# takes them for forgotten).
log.retention.hours=168
log.retention.bytes=-1
EOF
  # Kafka's logs at INFO, except the loggers that write a line per partition on
  # every start, leader change or topic creation (a test run creates hundreds),
  # or dump the whole configuration. Attest logs the topics it creates itself.
  cat >"$dir/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/stack.sh; edits are overwritten on the next 'up'. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="file" fileName="$(log_file "$svc")" filePattern="$(log_file "$svc").%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="100 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="kafka.network.RequestChannel\$" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Logger name="kafka.cluster.Partition" level="warn"/>
    <Logger name="kafka.log.LogManager" level="warn"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="warn"/>
    <Logger name="org.apache.kafka.coordinator.common.runtime.CoordinatorRuntime" level="warn"/>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="warn"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="warn"/>
    <Logger name="kafka.server.ReplicaFetcherManager" level="warn"/>
    <Logger name="kafka.server.ReplicaFetcherThread" level="warn"/>
    <Logger name="kafka.server.ReplicaAlterLogDirsManager" level="warn"/>
    <Logger name="org.apache.kafka.controller.ReplicationControlManager" level="warn"/>
    <Logger name="org.apache.kafka.controller.PartitionChangeBuilder" level="warn"/>
  </Loggers>
</Configuration>
EOF
}

# Formats the node's storage once: a data directory with meta.properties is
# never formatted again (that is where the topics are).
format_kafka() {
  local svc="$1" dir id
  dir="$(svc_dir "$svc")"
  [[ -f "$dir/data/meta.properties" ]] && return 0
  if [[ -s "$dir/cluster.id" ]]; then id="$(<"$dir/cluster.id")"; else id="$ATTEST_KAFKA_CLUSTER_ID"; fi
  echo "$id" >"$dir/cluster.id"
  log "$svc: formatting $dir/data (cluster id $id)"
  printf '\n===== %s: formatting %s\n' "$(date -u +%FT%TZ)" "$dir/data" >>"$(stdout_log "$svc")"
  java -Dlog4j2.configurationFile="$dir/log4j2.xml" -cp "$KAFKA_LIBS/*" \
    kafka.tools.StorageTool format --config "$dir/server.properties" --cluster-id "$id" \
    >>"$(stdout_log "$svc")" 2>&1 ||
    die "$svc: formatting $dir/data failed; see $(stdout_log "$svc") and $(log_file "$svc")"
}

# ---------------------------------------------------------------------------
# ClickHouse configuration (18.16: root element <yandex>)

write_clickhouse_config() {
  mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$ATTEST_LOG_DIR"
  cat >"$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/stack.sh; edits are overwritten on the next 'up'. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$ATTEST_LOG_DIR/clickhouse-server.log</log>
        <errorlog>$ATTEST_LOG_DIR/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>

    <!-- Loopback only. No https, secure tcp, interserver, mysql or postgres ports. -->
    <listen_host>127.0.0.1</listen_host>
    <http_port>$ATTEST_CLICKHOUSE_HTTP_PORT</http_port>
    <tcp_port>$ATTEST_CLICKHOUSE_TCP_PORT</tcp_port>

    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>536870912</mark_cache_size>

    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>

    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>

    <!-- Keep the server from reading /etc/metrika.xml. -->
    <include_from>$CH_DIR/metrika.xml</include_from>

    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>

    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
  cat >"$CH_DIR/metrika.xml" <<'EOF'
<?xml version="1.0"?>
<yandex></yandex>
EOF
  cat >"$CH_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by scripts/stack.sh; edits are overwritten on the next 'up'. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks replace="replace">
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

clickhouse_server_cmd() {
  if have clickhouse-server; then
    echo clickhouse-server
  elif [[ -x /usr/sbin/clickhouse-server ]]; then
    echo /usr/sbin/clickhouse-server
  elif have clickhouse; then
    echo "clickhouse server"
  else
    die "clickhouse-server not found; run scripts/install.sh"
  fi
}

# ---------------------------------------------------------------------------
# start / stop

# spawn NAME LOGFILE WORKDIR CMD...: start CMD detached (own session, survives
# this shell); supervised, as the child of its supervisor, which writes its pid file.
spawn() {
  local name="$1" logfile="$2" workdir="$3"
  shift 3
  if ((ATTEST_SUPERVISE)); then
    start_supervised "$name" "$logfile" "$workdir" "$@"
    return 0
  fi
  mkdir -p "$ATTEST_RUN_DIR" "$(dirname "$logfile")"
  printf '\n===== %s: starting %s: %s\n' "$(date -u +%FT%TZ)" "$name" "$*" >>"$logfile"
  # In a non-interactive shell a background job is not a process-group leader, so
  # setsid does not fork and $! is the service's own pid. (Were it not, svc_pid
  # would still find the service by its command line.)
  (cd "$workdir" && exec setsid nohup "$@" >>"$logfile" 2>&1 </dev/null 9>&-) &
  echo $! >"$(pid_file "$name")"
}

start_kafka() {
  local svc="$1" dir
  dir="$(svc_dir "$svc")"
  have java || die "java not found; run scripts/install.sh apt"
  [[ -s "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    die "Kafka $KAFKA_VERSION not found in $KAFKA_LIBS; run scripts/install.sh kafka"
  write_kafka_config "$svc"
  format_kafka "$svc"
  # Kafka keeps a file open per log segment; allow as many as the hard limit.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # JVM options as Kafka's kafka-run-class.sh sets them, plus: exit on
  # OutOfMemoryError rather than linger half-alive.
  # shellcheck disable=SC2086 # ATTEST_KAFKA_HEAP_OPTS holds several options
  spawn "$svc" "$(stdout_log "$svc")" "$dir" \
    java $ATTEST_KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

start_clickhouse() {
  local cmd
  cmd="$(clickhouse_server_cmd)"
  write_clickhouse_config
  # shellcheck disable=SC2086 # $cmd may be "clickhouse server"
  spawn clickhouse "$ATTEST_LOG_DIR/clickhouse-stdout.log" "$CH_DIR" \
    $cmd --config-file="$CH_DIR/config.xml"
}

# The local broker was tansu before Kafka. A tansu this script started earlier
# would hold the Kafka port: stop it (its data in .data/tansu is left alone).
retire_tansu() {
  local pf="$ATTEST_RUN_DIR/tansu.pid" pid
  pid_alive "$pf" "tansu broker" || return 0
  pid="$(pid_of "$pf")"
  log "stopping the old tansu broker (pid $pid); Kafka replaces it (tansu's data stays in $ATTEST_DATA_DIR/tansu; delete it when you like)"
  kill -TERM "$pid" 2>/dev/null || true
  local start=$SECONDS
  while running "$pid"; do
    if ((SECONDS - start >= 20)); then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pf"
}

up_one() {
  local svc="$1" pid port sup
  if pid="$(svc_pid "$svc")"; then
    if sup="$(supervisor_pid "$svc")"; then
      log "$svc already running (pid $pid, supervisor pid $sup), reusing"
    else
      log "$svc already running (pid $pid), reusing"
      ((ATTEST_SUPERVISE)) &&
        warn "$svc runs unsupervised; to supervise it: scripts/stack.sh down, then ATTEST_SUPERVISE=1 scripts/stack.sh up"
    fi
    return 0
  fi
  # Between a death and the restart its supervisor is about to make.
  if sup="$(supervisor_pid "$svc")"; then
    log "$svc is down and its supervisor (pid $sup) is starting it again"
    return 0
  fi
  if [[ -f "$(pid_file "$svc")" ]]; then
    log "$svc: removing stale pid file $(pid_file "$svc")"
    drop_pid_file "$svc"
  fi
  if port="$(port_in_use "$svc")"; then
    if is_kafka "$svc" && pid="$(find_pid "kafka.Kafka $ATTEST_DATA_DIR/kafka")"; then
      die "$svc: port 127.0.0.1:$port is taken by another Kafka node of this checkout (pid $pid), from a stack with a different ATTEST_KAFKA_NODES; stop that one first (ATTEST_KAFKA_NODES=… scripts/stack.sh down kafka)"
    fi
    die "$svc: port 127.0.0.1:$port is already in use by a process this script did not start (see: ss -ltnp 'sport = :$port')"
  fi
  log "starting $svc on $(addr "$svc")"
  if is_kafka "$svc"; then start_kafka "$svc"; else start_clickhouse; fi
}

# startup_died SVC: if no process of SVC runs, say so with its logs' last lines
# and exit. A dead service's pid file is left for the next 'up' to clear.
startup_died() {
  local svc="$1" f
  svc_alive "$svc" && return 0
  # Supervised: not started yet, or dead and about to be started again.
  supervisor_pid "$svc" >/dev/null && return 0
  printf 'attest: ERROR: %s exited during startup (address %s)\n' "$svc" "$(addr "$svc")" >&9
  while read -r f; do
    [[ -s "$f" ]] || continue
    printf 'attest: --- last 20 lines of %s ---\n' "$f" >&9
    tail -n 20 "$f" >&9
  done < <(log_files "$svc")
  exit 1
}

# Healthy, or the process died (then stop waiting and show its logs). wait_for
# silences its command's output, so errors go to fd 9, a copy of the script's
# stderr.
alive_and_healthy() {
  startup_died "$1"
  healthy "$1" "$2"
}

wait_healthy() {
  local svc="$1" start=$SECONDS reason
  WAIT_FOR_ADDR="$(addr "$svc")" wait_for "$svc" "$ATTEST_STACK_TIMEOUT" "$(log_file "$svc")" \
    alive_and_healthy "$svc" quick
  if ! is_kafka "$svc"; then
    log "$svc up: $(addr "$svc") pid $(svc_pid "$svc")"
    return 0
  fi
  # A broker answers ApiVersions before it takes writes (while it registers
  # with the controllers, or recovers its logs after a kill), so the last word
  # is a message produced and fetched, retried for the rest of the timeout.
  while :; do
    startup_died "$svc"
    reason="$(healthy "$svc" full 2>&1 >/dev/null)" && break
    if ((SECONDS - start >= ATTEST_STACK_TIMEOUT)); then
      die "$svc answers at $(addr "$svc") but did not take a write within ${ATTEST_STACK_TIMEOUT}s: ${reason:-no reason given}; log: $(log_file "$svc")"
    fi
    sleep 1
  done
  log "$svc up: $(addr "$svc") pid $(svc_pid "$svc"); a message was produced (acks=all) and fetched"
}

# down_many SVC...: stop the services together: SIGTERM to all, then wait for
# each (SIGKILL after its stop timeout). Together, because a Kafka node's
# controlled shutdown needs a controller quorum: stopped one after another,
# the last node of three would wait for controllers that are already gone.
down_many() {
  local svc pid port timeout start killed i pids=() svcs=() supervised=() again=()
  # First the supervisors, so that nothing is started again. Each passes
  # SIGTERM on to its service: that one gets no second SIGTERM from here
  # (ClickHouse takes a second one as "terminate immediately").
  for svc in "$@"; do
    if stop_supervisor "$svc"; then
      log "stopping the supervisor of $svc (pid $(pid_of "$(supervisor_pid_file "$svc")"))"
      supervised+=("$svc")
    fi
  done
  for svc in "$@"; do
    if ! pid="$(svc_pid "$svc")"; then
      if port="$(port_in_use "$svc")"; then
        die "$svc: no process started by this script runs it, yet 127.0.0.1:$port is open; leaving it alone (see: ss -ltnp 'sport = :$port')"
      fi
      drop_pid_file "$svc"
      log "$svc not running"
      continue
    fi
    log "stopping $svc (pid $pid)"
    [[ " ${supervised[*]} " == *" $svc "* ]] || kill -TERM "$pid" 2>/dev/null || true
    svcs+=("$svc")
    pids+=("$pid")
  done
  start=$SECONDS
  for i in "${!svcs[@]}"; do
    svc="${svcs[$i]}" pid="${pids[$i]}"
    timeout="$(stop_timeout "$svc")"
    while running "$pid"; do
      if ((SECONDS - start >= timeout)); then
        warn "$svc did not stop within ${timeout}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    # A killed JVM takes a moment to release its memory and exit.
    killed=$SECONDS
    while running "$pid"; do
      ((SECONDS - killed < 15)) || die "$svc (pid $pid) is still running after SIGKILL"
      sleep 0.2
    done
    drop_pid_file "$svc"
    log "$svc stopped"
  done
  # A supervisor exits once its service has. One that was starting the
  # service just as it was told to stop may have left it running: stop that.
  for svc in "${supervised[@]}"; do
    wait_supervisor_gone "$svc" 10
    svc_alive "$svc" && again+=("$svc")
  done
  if ((${#again[@]})); then
    down_many "${again[@]}"
  fi
  return 0
}

# reset_data SVC: delete the service's data, only when no process of it runs
# and none of its ports answers (whoever holds a port may be using the data).
reset_data() {
  local svc="$1" dir port
  if svc_alive "$svc"; then die "$svc is still running; not deleting its data"; fi
  if port="$(port_in_use "$svc")"; then
    die "$svc: 127.0.0.1:$port is open though no process of $svc runs; not deleting its data (see: ss -ltnp 'sport = :$port')"
  fi
  dir="$(svc_dir "$svc")"
  rm -rf "$dir"
  log "$svc data removed ($dir)"
}

status_one() {
  local svc="$1" state pid reason="" port sup supervision=""
  pid="-"
  if sup="$(supervisor_pid "$svc")"; then supervision="  supervisor pid $sup"; fi
  if pid="$(svc_pid "$svc")"; then
    if reason="$(healthy "$svc" 2>&1 >/dev/null)"; then state=up; else state=unhealthy; fi
  else
    pid="-"
    state=down
    if [[ -n "$supervision" ]]; then
      state=restarting
    elif port="$(port_in_use "$svc")"; then
      reason="127.0.0.1:$port is open, but not by a process this script started"
    fi
  fi
  printf '%-10s %-10s %-60s pid %-7s log %s%s\n' "$svc" "$state" "$(addr "$svc")" "$pid" "$(log_file "$svc")" "$supervision"
  if [[ "$state" != up && -n "$reason" ]]; then
    printf '%-10s %s\n' "" "$(tail -n 1 <<<"$reason")"
  fi
  [[ "$state" == up ]]
}

# ---------------------------------------------------------------------------

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}

cmd="${1:-}"
[[ -n "$cmd" ]] || {
  usage
  exit 2
}
shift
FOLLOW=0
TARGETS=()
for a in "$@"; do
  case "$a" in
    kafka) TARGETS+=("${KAFKA_SERVICES[@]}") ;;
    tansu)
      warn "'tansu' is an old name: the local broker is Apache Kafka now; use 'kafka'"
      TARGETS+=("${KAFKA_SERVICES[@]}")
      ;;
    kafka-[1-3])
      ((ATTEST_KAFKA_NODES > 1)) || die "'$a' exists only with ATTEST_KAFKA_NODES=3; the single node is 'kafka'"
      TARGETS+=("$a")
      ;;
    clickhouse | ch) TARGETS+=(clickhouse) ;;
    -f | --follow) FOLLOW=1 ;;
    *) die "unknown service '$a' (services: ${SERVICES[*]})" ;;
  esac
done
((${#TARGETS[@]})) || TARGETS=("${SERVICES[@]}")

mkdir -p "$ATTEST_RUN_DIR" "$ATTEST_LOG_DIR"
exec 9>&2

any_kafka() {
  local s
  for s in "${TARGETS[@]}"; do is_kafka "$s" && return 0; done
  return 1
}

# The shape of the running Kafka stack, for later commands without
# ATTEST_KAFKA_NODES (read by lib.sh): written once the nodes are started,
# removed once none runs.
NODES_FILE="$ATTEST_RUN_DIR/kafka-nodes"
remember_nodes() { any_kafka && echo "$ATTEST_KAFKA_NODES" >"$NODES_FILE"; return 0; }
forget_nodes_if_down() {
  local s
  for s in "${KAFKA_SERVICES[@]}"; do svc_alive "$s" && return 0; done
  rm -f "$NODES_FILE"
}
# The supervised mode, for later commands without ATTEST_SUPERVISE: noted
# before the services start (a start that fails halfway leaves supervisors
# that later commands must know of), dropped when no supervisor runs.
remember_supervise() { if ((ATTEST_SUPERVISE)); then echo 1 >"$SUPERVISE_FILE"; fi; }
forget_supervise_if_down() { any_supervisor || rm -f "$SUPERVISE_FILE"; }
mode_line() {
  if any_supervisor; then
    echo "mode: supervised (a service that dies is started again within a second or two; 'down' stops it for good)"
  else
    echo "mode: unsupervised"
  fi
}

case "$cmd" in
  up | start)
    any_kafka && retire_tansu
    remember_supervise
    for s in "${TARGETS[@]}"; do up_one "$s"; done
    remember_nodes
    for s in "${TARGETS[@]}"; do wait_healthy "$s"; done
    forget_supervise_if_down
    log "Kafka brokers: $ATTEST_KAFKA__BROKERS  ClickHouse: $ATTEST_CLICKHOUSE__URL  ($(mode_line))"
    ;;
  down | stop)
    any_kafka && retire_tansu
    down_many "${TARGETS[@]}"
    forget_nodes_if_down
    forget_supervise_if_down
    ;;
  restart)
    any_kafka && retire_tansu
    down_many "${TARGETS[@]}"
    remember_supervise
    for s in "${TARGETS[@]}"; do up_one "$s"; done
    remember_nodes
    for s in "${TARGETS[@]}"; do wait_healthy "$s"; done
    forget_supervise_if_down
    ;;
  reset)
    # Throws away the service's data (every topic, every database) and starts
    # it empty. (What tests leave behind, scripts/sweep.py deletes alone.)
    any_kafka && retire_tansu
    # The nodes of a cluster share one metadata log: wiping one node's copy
    # while the others keep theirs makes a voter forget its votes.
    if ((ATTEST_KAFKA_NODES > 1)); then
      for s in "${KAFKA_SERVICES[@]}"; do
        if any_kafka && [[ " ${TARGETS[*]} " != *" $s "* ]]; then
          die "reset applies to all Kafka nodes at once: scripts/stack.sh reset kafka"
        fi
      done
    fi
    down_many "${TARGETS[@]}"
    for s in "${TARGETS[@]}"; do reset_data "$s"; done
    remember_supervise
    for s in "${TARGETS[@]}"; do up_one "$s"; done
    remember_nodes
    for s in "${TARGETS[@]}"; do wait_healthy "$s"; done
    forget_supervise_if_down
    ;;
  status)
    rc=0
    mode_line
    for s in "${TARGETS[@]}"; do status_one "$s" || rc=3; done
    exit "$rc"
    ;;
  pid)
    ((${#TARGETS[@]} == 1)) || die "pid takes one service (${SERVICES[*]})"
    svc_pid "${TARGETS[0]}"
    ;;
  logs)
    files=()
    for s in "${TARGETS[@]}"; do
      while read -r f; do
        echo "$s: $f"
        [[ -f "$f" ]] && files+=("$f")
      done < <(log_files "$s")
    done
    ((${#files[@]})) || exit 0
    if ((FOLLOW)); then
      exec tail -n 20 -F "${files[@]}"
    else
      tail -n 20 "${files[@]}"
    fi
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage
    die "unknown command '$cmd'"
    ;;
esac
