#!/usr/bin/env bash
# Command 1: install what is missing, start the local stack (tansu + ClickHouse)
# and the Attest server on loopback, and print the console URL. Idempotent.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
"$here/install.sh"
"$here/stack.sh" up
"$here/console.sh" build
"$here/console.sh" start

# One API key for trying the ingest API locally, created once and kept out of
# the terminal's scrollback and out of git (.data/ is ignored).
. "$here/lib.sh"
: "${CARGO_TARGET_DIR:=$HOME/.cache/attest/target}"
key_file="$ATTEST_DATA_DIR/dev-api-key"
if [[ ! -s "$key_file" ]]; then
  (cd "$ATTEST_ROOT" && umask 077 && "$CARGO_TARGET_DIR/debug/attest" keys create \
    --tenant acme --service sso --description "local development (scripts/up.sh)" >"$key_file.tmp") \
    && mv "$key_file.tmp" "$key_file"
fi
echo "attest: API key for tenant acme, service sso in $key_file"


# And one console access key that sees every tenant, to sign in with.
access_file="$ATTEST_DATA_DIR/dev-console-key"
if [[ ! -s "$access_file" ]]; then
  (cd "$ATTEST_ROOT" && umask 077 && "$CARGO_TARGET_DIR/debug/attest" access grant \
    --name "local developer" --all-tenants --by scripts/up.sh >"$access_file.tmp") \
    && mv "$access_file.tmp" "$access_file"
fi
echo "attest: sign in to the console with the access key in $access_file"
