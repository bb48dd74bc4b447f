#!/usr/bin/env bash
# A restart-on-exit supervisor for one local service, as docker's
# `restart: unless-stopped` is in production. Not run by hand: lib.sh's
# start_supervised starts it, detached, in the service's working directory
# with its output going to the service's log.
#
#   scripts/supervise.sh NAME
#
# Runs the command in $ATTEST_RUN_DIR/NAME.cmd (NUL-separated arguments: kept
# out of this process's own command line, so the service is still found by
# its command line alone) as a child, writes the child's pid to
# $ATTEST_RUN_DIR/NAME.pid each time it starts it, and starts it again 1 s
# after it exits for any reason (a crash, kill -9). Only SIGTERM or SIGINT to
# this process ends it: it passes the signal on to the service, waits for the
# service to exit and exits without a restart. A service that keeps dying
# within 10 s of its start is restarted after 1, 2, 4 … up to 30 s, like
# docker's back-off; one that ran longer is restarted after 1 s again.
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name="${1:?usage: supervise.sh NAME}"
cmd_file="$ATTEST_RUN_DIR/$name.cmd"
pid_file="$ATTEST_RUN_DIR/$name.pid"
[[ -s "$cmd_file" ]] || die "supervise: no command in $cmd_file"
cmd=()
while IFS= read -r -d '' arg; do cmd+=("$arg"); done <"$cmd_file"
((${#cmd[@]})) || die "supervise: $cmd_file holds no command"

say() { printf '\n===== %s: supervisor of %s (pid %s): %s\n' "$(date -u +%FT%TZ)" "$name" "$$" "$*"; }

stopping=0
child=""
# shellcheck disable=SC2317 # run by the trap below
on_stop() {
  stopping=1
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    say "stop requested; sending SIGTERM to $name (pid $child)"
    kill -TERM "$child" 2>/dev/null || true
  fi
}
trap on_stop TERM INT

delay=1
restarts=0
while ((!stopping)); do
  started=$SECONDS
  say "starting $name (restarts so far: $restarts): ${cmd[*]}"
  "${cmd[@]}" </dev/null &
  child=$!
  echo "$child" >"$pid_file"
  # A stop that arrived while the child was being started has to reach it.
  ((stopping)) && kill -TERM "$child" 2>/dev/null
  # wait returns early when a trapped signal arrives; wait again until the
  # child has really exited (and been reaped).
  status=0
  while :; do
    wait "$child"
    status=$?
    running "$child" || break
  done
  if ((stopping)); then
    say "$name (pid $child) exited with status $status; stopped, not restarting"
    break
  fi
  if ((status > 128)); then
    why="killed by signal $((status - 128))"
  else
    why="exit status $status"
  fi
  if ((SECONDS - started < 10)); then
    ((restarts > 0)) && delay=$((delay * 2 > 30 ? 30 : delay * 2))
  else
    delay=1
  fi
  restarts=$((restarts + 1))
  say "$name (pid $child) died ($why); restarting in ${delay}s"
  # In the background, so that a stop request ends the wait at once.
  sleep "$delay" &
  wait $! 2>/dev/null || true
done
# The pid file names the child only while this supervisor runs it.
[[ "$(pid_of "$pid_file")" == "$child" ]] && rm -f "$pid_file"
exit 0
