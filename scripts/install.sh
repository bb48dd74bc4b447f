#!/usr/bin/env bash
# Install everything Attest's local stack, build and tests need. Idempotent: what is
# already installed is reused (one "skip" line per step).
#
#   scripts/install.sh                 # install what is missing
#   scripts/install.sh --check         # only report what is missing (exit 1 if anything is)
#   scripts/install.sh [--check] STEP… # only these steps: apt rust kafka avro leptos wasm-bindgen npm python
#
# Never downloads browsers or prebuilt binaries: Debian apt, crates.io, Maven Central
# (the Kafka broker's jars, Apache Avro's Java checker), npm and PyPI only.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CARGO_LEPTOS_VERSION="0.3.10"
# Java and Maven run the local Kafka broker and fetch its jars. The release
# WASM is shrunk by binaryen's wasm-opt from npm (end2end/package.json, put
# first on PATH by scripts/console.sh): Debian's binaryen 108 breaks the
# WASM that wasm-bindgen makes today. Debian's stays installed so that
# cargo-leptos never downloads one of its own.
# prometheus brings promtool, which checks /metrics as Prometheus reads it
# (server/tests/metrics_exposition.rs); no Prometheus server is started.
APT_PACKAGES=(clickhouse-server clickhouse-client chromium openjdk-17-jre-headless maven
  pkg-config libssl-dev curl make gcc g++ binaryen prometheus)
# Extra Debian packages can be added with ATTEST_APT_EXTRA="pkg1 pkg2".
read -r -a _extra <<<"${ATTEST_APT_EXTRA:-}"
APT_PACKAGES+=("${_extra[@]}")
ALL_STEPS=(apt rust kafka avro leptos wasm-bindgen npm python)

CHECK=0
STEPS=()
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    apt | rust | kafka | avro | leptos | wasm-bindgen | npm | python) STEPS+=("$arg") ;;
    tansu)
      warn "step 'tansu' is gone: the local broker is Apache Kafka now; running step 'kafka'"
      STEPS+=(kafka)
      ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done
((${#STEPS[@]})) || STEPS=("${ALL_STEPS[@]}")

MISSING=()
skip() { log "skip $1: $2"; }
# need WHAT: in --check mode record it and return 1 (caller skips the install); else return 0.
need() {
  if ((CHECK)); then
    MISSING+=("$1")
    log "missing: $1"
    return 1
  fi
  log "installing $1"
  return 0
}

dpkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

step_apt() {
  local missing=() p
  if ! have dpkg-query; then
    warn "apt step: dpkg-query not found (not Debian?); skipping system packages"
    return 0
  fi
  for p in "${APT_PACKAGES[@]}"; do
    dpkg_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    skip apt "all of ${APT_PACKAGES[*]} installed"
    return 0
  fi
  need "apt packages: ${missing[*]}" || return 0
  as_root apt-get update
  # clickhouse-server's maintainer scripts may try to start a system service and fail
  # without systemd; we never use that service, so a failing postinst is tolerated as
  # long as the binaries ended up on disk.
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
    warn "apt-get install reported an error; checking whether the packages are usable anyway"
    as_root env DEBIAN_FRONTEND=noninteractive dpkg --configure -a || true
  fi
  for p in "${missing[@]}"; do
    dpkg_installed "$p" || [[ "$p" == clickhouse-server && -x /usr/sbin/clickhouse-server ]] ||
      die "apt package $p is still not installed"
  done
  # Debian's package may have started its own server on 8123/9000; we never use it.
}

step_rust() {
  have rustup || die "rustup not found; install the Rust toolchain first (https://rustup.rs)"
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    skip rust "target wasm32-unknown-unknown installed"
    return 0
  fi
  need "rustup target wasm32-unknown-unknown" || return 0
  rustup target add wasm32-unknown-unknown
}

# The local broker's jars (scripts/kafka/pom.xml) from Maven Central into
# $ATTEST_KAFKA_HOME/libs. The marker names the pom's checksum and every jar, so a
# changed pom or a lost jar means "copy again"; a half-finished copy never
# counts, because the jars land in libs.tmp first. A running broker keeps the
# jars it opened; `scripts/stack.sh restart kafka` picks up new ones.
kafka_pom() { echo "$ATTEST_ROOT/scripts/kafka/pom.xml"; }
kafka_marker() { echo "$ATTEST_KAFKA_HOME/libs.complete"; }

kafka_libs_complete() {
  local marker libs sum jar
  marker="$(kafka_marker)"
  libs="$ATTEST_KAFKA_HOME/libs"
  [[ -f "$marker" && -d "$libs" ]] || return 1
  sum="$(sha256sum "$(kafka_pom)" | awk '{print $1}')"
  [[ "$(head -n 1 "$marker")" == "pom $sum" ]] || return 1
  while read -r jar; do
    [[ -s "$libs/$jar" ]] || return 1
  done < <(tail -n +2 "$marker")
  [[ -s "$libs/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

step_kafka() {
  if kafka_libs_complete; then
    skip kafka "Apache Kafka $KAFKA_VERSION jars in $ATTEST_KAFKA_HOME/libs"
    return 0
  fi
  if ! have java; then
    need "java (apt package openjdk-17-jre-headless)" || return 0
    die "java not found; run scripts/install.sh apt"
  fi
  need "Apache Kafka $KAFKA_VERSION jars from Maven Central into $ATTEST_KAFKA_HOME/libs" || return 0
  have mvn || die "mvn not found; run scripts/install.sh apt (Debian package maven)"
  local libs="$ATTEST_KAFKA_HOME/libs" tmp="$ATTEST_KAFKA_HOME/libs.tmp" marker
  marker="$(kafka_marker)"
  mkdir -p "$ATTEST_KAFKA_HOME"
  rm -rf "$tmp" "$marker"
  # Maven's output only matters when it fails (quiet mode still prints colour resets).
  local out
  out="$(mktemp)"
  if ! mvn -B -q -f "$(kafka_pom)" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    die "mvn could not fetch the Kafka jars (Maven Central reachable? see the output above)"
  fi
  rm -f "$out"
  [[ -s "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "mvn finished but $tmp has no kafka_2.13-$KAFKA_VERSION.jar"
  rm -rf "$libs"
  mv "$tmp" "$libs"
  {
    echo "pom $(sha256sum "$(kafka_pom)" | awk '{print $1}')"
    (cd "$libs" && ls -1 -- *.jar)
  } >"$marker.tmp"
  mv "$marker.tmp" "$marker"
  log "kafka: $(wc -l <"$marker" | awk '{print $1 - 1}') jars in $libs"
}

# Apache Avro's Java library and its dependencies (scripts/avro/pom.xml) from
# Maven Central into $ATTEST_AVRO_JAVA_LIBS, for the evolution table's Java
# check (server/tests/avro_evolutions.rs). As for Kafka's jars, they land in a
# temporary directory first, so a half-finished copy never counts.
step_avro() {
  local libs="$ATTEST_AVRO_JAVA_LIBS" tmp="$ATTEST_AVRO_JAVA_LIBS.tmp" out
  if [[ -s "$libs/avro-$AVRO_JAVA_VERSION.jar" ]]; then
    skip avro "Apache Avro $AVRO_JAVA_VERSION jars in $libs"
    return 0
  fi
  need "Apache Avro $AVRO_JAVA_VERSION jars from Maven Central into $libs" || return 0
  have mvn || die "mvn not found; run scripts/install.sh apt (Debian package maven)"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$libs")"
  out="$(mktemp)"
  if ! mvn -B -q -f "$ATTEST_ROOT/scripts/avro/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    die "mvn could not fetch the Apache Avro jars (Maven Central reachable? see the output above)"
  fi
  rm -f "$out"
  [[ -s "$tmp/avro-$AVRO_JAVA_VERSION.jar" ]] || die "mvn finished but $tmp has no avro-$AVRO_JAVA_VERSION.jar"
  rm -rf "$libs"
  mv "$tmp" "$libs"
  log "avro: $(find "$libs" -name '*.jar' | wc -l) jars in $libs"
}

step_leptos() {
  local v
  v="$(cargo leptos --version 2>/dev/null || true)"
  if grep -qw "$CARGO_LEPTOS_VERSION" <<<"$v"; then
    skip leptos "$v"
    return 0
  fi
  need "cargo-leptos $CARGO_LEPTOS_VERSION${v:+ (have: $v)}" || return 0
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
}

# Version of the wasm-bindgen crate in Cargo.lock (empty if absent).
locked_wasm_bindgen_version() {
  local lock="$ATTEST_ROOT/Cargo.lock"
  [[ -f "$lock" ]] || return 0
  awk '
    /^\[\[package\]\]/ { in_wb = 0 }
    /^name = "wasm-bindgen"$/ { in_wb = 1; next }
    in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
  ' "$lock"
}

step_wasm_bindgen() {
  local want have_v
  if [[ ! -f "$ATTEST_ROOT/Cargo.lock" ]]; then
    skip wasm-bindgen "no Cargo.lock yet (run again after the first build)"
    return 0
  fi
  want="$(locked_wasm_bindgen_version)"
  if [[ -z "$want" ]]; then
    skip wasm-bindgen "Cargo.lock has no wasm-bindgen package"
    return 0
  fi
  have_v="$(wasm-bindgen --version 2>/dev/null || true)"
  if [[ "$(awk '{print $2}' <<<"$have_v")" == "$want" ]]; then
    skip wasm-bindgen "$have_v"
    return 0
  fi
  need "wasm-bindgen-cli $want${have_v:+ (have: $have_v)}" || return 0
  cargo install wasm-bindgen-cli --version "$want"
}

step_npm() {
  local dir="$ATTEST_ROOT/end2end"
  if [[ ! -f "$dir/package.json" ]]; then
    skip npm "no end2end/package.json"
    return 0
  fi
  if [[ -d "$dir/node_modules" ]] &&
    { [[ ! -f "$dir/package-lock.json" ]] || [[ ! "$dir/package-lock.json" -nt "$dir/node_modules" ]]; }; then
    skip npm "end2end/node_modules up to date"
    return 0
  fi
  need "npm packages in end2end/" || return 0
  have npm || die "npm not found; install Node.js"
  # Browsers come from Debian's chromium; never let Playwright download its own.
  if [[ -f "$dir/package-lock.json" ]]; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  else
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund)
  fi
  touch "$dir/node_modules"
}

step_python() {
  if ! have python3; then
    warn "python3 not found; skipping python packages"
    return 0
  fi
  # confluent_kafka: scripts/kafka_probe.py, the broker's health check (produce + fetch);
  # with its schemaregistry and avro extras: server/tests/confluent_clients.py,
  # Confluent's own client with its defaults against Attest's registry.
  # openapi-spec-validator: scripts/api_doc.py check, the API's OpenAPI 3.1 document.
  # avro (pinned): Apache Avro's Python compatibility checker, which
  # server/tests/avro_evolutions.rs holds to the evolution table.
  # cryptography: PyCA's Ed25519, for server/tests/integrity_verifier.py,
  # the verifier written from docs/INTEGRITY.md alone.
  if python3 -c 'import chdb, fastavro, confluent_kafka.schema_registry.avro, openapi_spec_validator, avro.compatibility, cryptography.hazmat.primitives.asymmetric.ed25519, sys; import avro; sys.exit(avro.__version__ != "1.12.2")' >/dev/null 2>&1; then
    skip python "chdb, fastavro, confluent_kafka (schema registry, avro), openapi_spec_validator, cryptography and avro 1.12.2 importable"
    return 0
  fi
  need "python packages chdb-core-lite fastavro confluent-kafka[schemaregistry,avro] openapi-spec-validator avro==1.12.2 cryptography" || return 0
  # PIP_BREAK_SYSTEM_PACKAGES: Debian's own python3 refuses pip installs otherwise (PEP 668).
  if ! PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet chdb-core-lite fastavro 'confluent-kafka[schemaregistry,avro]' openapi-spec-validator avro==1.12.2 cryptography; then
    warn "pip install chdb-core-lite fastavro confluent-kafka[schemaregistry,avro] openapi-spec-validator avro==1.12.2 cryptography failed; tests that need them will fail, and scripts/stack.sh cannot check the broker"
  fi
}

for s in "${STEPS[@]}"; do
  "step_${s//-/_}"
done

if ((CHECK)); then
  if ((${#MISSING[@]})); then
    log "${#MISSING[@]} thing(s) missing; run scripts/install.sh"
    exit 1
  fi
  log "nothing missing"
fi
