#!/usr/bin/env bash
# Stops the Attest server and the local stack. Data in .data/ is kept.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
"$here/console.sh" stop
ATTEST_INSTANCE=e2e "$here/console.sh" stop
"$here/stack.sh" down
