#!/usr/bin/env bash
# Command 1: install what is missing, start the local stack (Kafka + ClickHouse)
# and the Attest server on loopback, and print the console URL. Idempotent.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
# The console a new user meets is the release build: the optimized server
# and the small WASM, as the benchmarks measure it. (scripts/test.sh builds
# debug, which compiles much faster.) ATTEST_PROFILE=debug serves that instead.
: "${ATTEST_PROFILE:=release}"
export ATTEST_PROFILE
"$here/install.sh"
"$here/stack.sh" up
"$here/console.sh" build
"$here/console.sh" start

# One API key for trying the ingest API and one console access key that sees
# every tenant, each made once and kept out of the terminal's scrollback and
# out of git (.data/ is ignored). A key whose record is gone (the ClickHouse
# data was reset) or revoked is made again.
# The binary the console runs, so keys are made by the same build.
attest() { (cd "$ATTEST_ROOT" && "$CARGO_TARGET_DIR/$ATTEST_PROFILE/attest" "$@"); }

# still_valid FILE LIST-COMMAND...: the key in FILE is listed as valid.
still_valid() {
  local file="$1"; shift
  [[ -s "$file" ]] || return 1
  local id
  id="$(cut -c5-20 "$file")"
  attest "$@" 2>/dev/null | awk -v id="$id" '$1 == id && / valid / { found = 1 } END { exit !found }'
}

# make_key FILE COMMAND...: runs COMMAND (which prints the key) into FILE.
make_key() {
  local file="$1"; shift
  (umask 077 && attest "$@" >"$file.tmp") && mv "$file.tmp" "$file"
}

key_file="$ATTEST_DATA_DIR/dev-api-key"
if ! still_valid "$key_file" keys list; then
  make_key "$key_file" keys create --tenant acme --service sso \
    --description "local development (scripts/up.sh)"
fi
echo "attest: API key for tenant acme, service sso in $key_file"

access_file="$ATTEST_DATA_DIR/dev-console-key"
if ! still_valid "$access_file" access list; then
  make_key "$access_file" access grant --name "local developer" --all-tenants --by scripts/up.sh
fi
echo "attest: sign in to the console with the access key in $access_file"
