#!/usr/bin/env bash
# Command 2: every test, against the real local stack. Exits non-zero on any
# failure. Installs what is missing and starts the stack if it is not up.
#
#   1. formatting and lints (cargo fmt, clippy -D warnings), the release
#      console built as scripts/up.sh builds it and its WASM started in
#      Chromium
#   2. unit and integration tests (cargo test; integration tests use Kafka
#      and ClickHouse with their own topics and databases), then every
#      migration and query on a current ClickHouse embedded by chdb, the
#      OpenAPI document (valid 3.1, docs/API.md current), the SDKs' tests
#      and their broker-restart test (a private broker)
#   3. browser end-to-end tests (Playwright in Debian's Chromium) against a
#      release console instance of their own ("e2e": own port, topics and
#      database)
#   4. scripts/chaos.sh: the server, the broker and ClickHouse killed with
#      SIGKILL under load, brought back by supervisors; every acknowledged
#      event stored once ("chaos: … missing 0, duplicated 0" counts as 1 passed)
#
# The last line is "summary: P passed, F failed, S skipped". The script exits
# non-zero when F > 0 or S > 0: nothing in this project asks for a skip, so a
# skipped (cargo: ignored) test is one that tested nothing.
#
#   scripts/test.sh summarize LOG…   only sum up saved runner output
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
export CARGO_TARGET_DIR

# summarize: reads runner output on stdin, prints the summary line.
#   cargo:      "test result: ok. 5 passed; 0 failed; 2 ignored; …" (ignored is a skip)
#   chdb check: "modern-clickhouse: N passed, M failed" (and the same line
#               from api_doc.py "api-doc:", the SDK tests "sdk-python:",
#               "sdk-restart:", end2end/release-wasm.js "release-wasm:")
#   Playwright: "  N passed (10.2s)", "  N failed", "  N flaky", "  N interrupted"
#               (each a failure), "  N skipped", "  N did not run" (each a skip),
#               "  N errors were not a part of any test" (failures)
#   chaos.sh:   its final "chaos: acknowledged A, stored once S, missing M,
#               duplicated D" is 1 passed when M and D are 0, else 1 failed
#   run():      "runner failed: …" (a runner exited non-zero without reporting
#               a failed test: a compile error, a crash) is 1 failed
summarize() {
  sed 's/\x1b\[[0-9;]*m//g' | awk '
    /^test result:/ {
      for (i = 1; i < NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i
        if ($(i+1) ~ /^failed/) f += $i
        if ($(i+1) ~ /^ignored/) s += $i
      }
    }
    /^(modern-clickhouse|api-doc|sdk-python|sdk-restart|release-wasm): [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
    /^ +[0-9]+ passed \(/ { p += $1 }
    /^ +[0-9]+ (failed|flaky|interrupted)$/ { f += $1 }
    /^ +[0-9]+ (skipped|did not run)$/ { s += $1 }
    /^ +[0-9]+ errors? (was|were) not a part of any test/ { f += $1 }
    /^chaos: acknowledged [0-9]+, stored once [0-9]+, missing [0-9]+, duplicated [0-9]+$/ {
      if ($0 ~ /, missing 0, duplicated 0$/) p++; else f++
    }
    /^runner failed: / { f++ }
    END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }'
}

# summary_ok LINE: the summary line has no failure and no skip.
summary_ok() { [[ "$1" =~ ^summary:\ [0-9]+\ passed,\ 0\ failed,\ 0\ skipped$ ]]; }

if [[ "${1:-}" == summarize ]]; then
  shift
  line="$(cat "$@" | summarize)"
  echo "$line"
  summary_ok "$line"
  exit
fi

cd "$ATTEST_ROOT"

# Every runner's output also goes to one log, summed up at the end. A failing
# runner does not stop the runners after it (one run shows every failure),
# but it always fails the script: its failed tests are counted, and if it
# reported none (it did not compile, it crashed) a "runner failed" line is.
# pipefail makes the pipeline's status the runner's, not tee's. Everything
# outside run() (lints, builds, starting the stack and the console) stops
# the script at once under set -e: the runners after it would test nothing.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run() {
  local out rc=0
  out="$(mktemp)"
  "$@" 2>&1 | tee "$out" || rc=$?
  cat "$out" >>"$results"
  if ((rc != 0)) && [[ "$(summarize <"$out")" == *" 0 failed,"* ]]; then
    echo "runner failed: '$*' exited with status $rc without reporting a failed test" | tee -a "$results"
  fi
  rm -f "$out"
}

"$here/install.sh"
"$here/stack.sh" up
# Topics and databases that failed or interrupted runs left behind: the
# broker recovers every partition after a kill -9 (step 4), and thousands of
# leftovers once made that take minutes.
python3 "$here/sweep.py"

log "formatting and lints"
cargo fmt --all -- --check
cargo clippy -p server -p app --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
# The console as scripts/up.sh builds it (the release server; cargo-leptos's
# wasm-release profile, wasm-bindgen, binaryen's wasm-opt), into a site of
# its own: the browser tests below run it. Optimised code generation
# reaches limits a debug build and clippy never do (a view type too deep for
# rustc's default recursion limit once broke only this build), a wasm-opt
# once broke every release WASM at start-up, and a debug console is built
# with its components erased (cargo-leptos does that for compile time), so
# its pages and WASM are not the release build's: up.sh, the README's first
# command, serves this one. Started in Chromium at once below, so that a
# WASM that cannot start fails early and by name.
release_site="$ATTEST_ROOT/target/site-release-check"
ATTEST_PROFILE=release ATTEST_SITE_ROOT="$release_site" "$here/console.sh" build

log "the release WASM starts in Chromium"
run node end2end/release-wasm.js "$release_site"

log "unit and integration tests"
run cargo test --no-fail-fast -p app --features ssr
run cargo test --no-fail-fast -p server
run cargo test --no-fail-fast -p attest-client

log "migrations and queries on a current ClickHouse (chdb)"
catalogue="$(mktemp)"
# This builds the debug binary, which the check needs as well: it binds every
# value through `attest sql --bind`, the server's own ClickHouse client.
cargo run -q -p server --bin attest -- sql >"$catalogue"
export ATTEST_BIN="$CARGO_TARGET_DIR/debug/attest"
run python3 server/tests/modern_clickhouse.py "$catalogue"
rm -f "$catalogue"

log "the OpenAPI document (valid 3.1) and docs/API.md rendered from it"
run python3 "$here/api_doc.py" check

log "the SDKs: the Python client's tests, then 10,000 events through each SDK across a broker restart"
# Each starts its own `attest serve` (the debug binary above); the restart
# test also starts a private Kafka broker (its own ports and data), so the
# shared one is never restarted.
run python3 sdk/python/tests/run.py
cargo build -q -p attest-client --examples
run python3 sdk/testing/restart.py python
run python3 sdk/testing/restart.py rust

log "browser end-to-end tests"
# The e2e console is the release build made above, with its own site: what
# users run, pages and WASM alike.
export ATTEST_PROFILE=release ATTEST_SITE_ROOT="$release_site"
export ATTEST_INSTANCE=e2e
export ATTEST_CONSOLE_PORT="${ATTEST_E2E_PORT:-3039}"
export ATTEST_KAFKA__TOPIC_PREFIX=attest.e2e
export ATTEST_KAFKA__CONSUMER_GROUP=attest-e2e-writer
export ATTEST_CLICKHOUSE__DATABASE=attest_e2e
# The browser tests are about the console; they post events for tenants of
# their own making, so this instance does not ask for API keys (which
# server/tests/ingest_keys.rs covers).
export ATTEST_INGEST__REQUIRE_API_KEY=false
# detections.spec.js runs a webhook receiver on this port with this secret;
# the console delivers detections there and evaluates every second.
export ATTEST_E2E_DETECTIONS_HOOK_PORT="${ATTEST_E2E_DETECTIONS_HOOK_PORT:-3049}"
ATTEST_E2E_DETECTIONS_SECRET="e2e-detections-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export ATTEST_E2E_DETECTIONS_SECRET
export ATTEST_DETECTIONS__EVALUATE_EVERY=1000
export ATTEST_DETECTIONS__WEBHOOKS="[{name=\"e2e-soc\",url=\"http://127.0.0.1:$ATTEST_E2E_DETECTIONS_HOOK_PORT/hook\",secret=\"$ATTEST_E2E_DETECTIONS_SECRET\"}]"
"$here/console.sh" stop
trap '"$here/console.sh" stop; rm -f "$results"' EXIT
"$here/console.sh" start
# The e2e console asks for sign-in like any other: one key that sees every
# tenant (the specs' storage state signs in with it), one scoped to a
# single tenant (login.spec.js) and an admin (pipeline.spec.js). Granted through the binary, like an
# operator would, into the e2e instance's own database.
grant() { "$CARGO_TARGET_DIR/debug/attest" access grant --by scripts/test.sh "$@"; }
ATTEST_E2E_ACCESS_KEY="$(grant --name e2e-analyst --all-tenants)"
ATTEST_E2E_SCOPED_KEY="$(grant --name e2e-scoped-analyst --tenant e2e-scoped)"
# An admin for pipeline.spec.js and dead_letters.spec.js (the two above are
# analysts, who get 403 there). dead_letters.spec.js also produces a poison
# record onto this instance's topics (ATTEST_KAFKA__TOPIC_PREFIX, and
# ATTEST_KAFKA__BROKERS from lib.sh).
ATTEST_E2E_ADMIN_KEY="$(grant --name e2e-admin --all-tenants --role admin)"
# redactions.spec.js: a redaction needs a second, different admin to approve.
ATTEST_E2E_SECOND_ADMIN_KEY="$(grant --name e2e-admin-2 --all-tenants --role admin)"
export ATTEST_E2E_ACCESS_KEY ATTEST_E2E_SCOPED_KEY ATTEST_E2E_ADMIN_KEY ATTEST_E2E_SECOND_ADMIN_KEY
(cd end2end && ATTEST_CONSOLE_URL="http://127.0.0.1:$ATTEST_CONSOLE_PORT" run npx playwright test)

log "kill -9 campaign (scripts/chaos.sh)"
# Last, because it restarts the stack twice (supervised, then back as it
# was) and kills the broker and ClickHouse. The e2e console is done.
"$here/console.sh" stop
run "$here/chaos.sh"

line="$(summarize <"$results")"
echo "$line"
summary_ok "$line"
