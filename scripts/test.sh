#!/usr/bin/env bash
# Command 2: every test, against the real local stack. Exits non-zero on any
# failure. Installs what is missing and starts the stack if it is not up.
#
#   1. formatting and lints (cargo fmt, clippy -D warnings)
#   2. unit and integration tests (cargo test; integration tests use Kafka
#      and ClickHouse with their own topics and databases), then every
#      migration and query on a current ClickHouse embedded by chdb
#   3. browser end-to-end tests (Playwright in Debian's Chromium) against a
#      console instance of their own ("e2e": own port, topics and database)
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
export CARGO_TARGET_DIR
cd "$ATTEST_ROOT"

# Every runner's output also goes to one log, summed up at the end.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run() { "$@" 2>&1 | tee -a "$results"; }

"$here/install.sh"
"$here/stack.sh" up

log "formatting and lints"
cargo fmt --all -- --check
cargo clippy -p server -p app --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

log "unit and integration tests"
run cargo test -p app --features ssr
run cargo test -p server

log "migrations and queries on a current ClickHouse (chdb)"
catalogue="$(mktemp)"
cargo run -q -p server --bin attest -- sql >"$catalogue"
run python3 server/tests/modern_clickhouse.py "$catalogue"
rm -f "$catalogue"

log "browser end-to-end tests"
"$here/console.sh" build
export ATTEST_INSTANCE=e2e
export ATTEST_CONSOLE_PORT="${ATTEST_E2E_PORT:-3039}"
export ATTEST_KAFKA__TOPIC_PREFIX=attest.e2e
export ATTEST_KAFKA__CONSUMER_GROUP=attest-e2e-writer
export ATTEST_CLICKHOUSE__DATABASE=attest_e2e
# The browser tests are about the console; they post events for tenants of
# their own making, so this instance does not ask for API keys (which
# server/tests/ingest_keys.rs covers).
export ATTEST_INGEST__REQUIRE_API_KEY=false
"$here/console.sh" stop
trap '"$here/console.sh" stop; rm -f "$results"' EXIT
"$here/console.sh" start
# The e2e console asks for sign-in like any other: one key that sees every
# tenant (the specs' storage state signs in with it) and one scoped to a
# single tenant (login.spec.js). Granted through the binary, like an
# operator would, into the e2e instance's own database.
grant() { "$CARGO_TARGET_DIR/debug/attest" access grant --by scripts/test.sh "$@"; }
ATTEST_E2E_ACCESS_KEY="$(grant --name e2e-analyst --all-tenants)"
ATTEST_E2E_SCOPED_KEY="$(grant --name e2e-scoped-analyst --tenant e2e-scoped)"
export ATTEST_E2E_ACCESS_KEY ATTEST_E2E_SCOPED_KEY
(cd end2end && ATTEST_CONSOLE_URL="http://127.0.0.1:$ATTEST_CONSOLE_PORT" run npx playwright test)

# cargo: "test result: ok. N passed; M failed"; chdb check: "N passed, M failed";
# Playwright: "N passed (…)" / "M failed".
sed 's/\x1b\[[0-9;]*m//g' "$results" | awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^modern-clickhouse:/ { p += $2; f += $4 }
  /^ +[0-9]+ passed \(/ { p += $1 }
  /^ +[0-9]+ failed$/ { f += $1 }
  END { printf "summary: %d passed, %d failed\n", p, f }'
