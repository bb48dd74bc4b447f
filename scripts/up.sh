#!/usr/bin/env bash
# Command 1: install what is missing, start the local stack (tansu + ClickHouse)
# and the Attest server on loopback, and print the console URL. Idempotent.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
"$here/install.sh"
"$here/stack.sh" up
"$here/console.sh" build
"$here/console.sh" start
