#!/usr/bin/env bash
# stress-test.sh [runs] — run `make test` several times (default 3) while
# stress-ng keeps every core busy, and print one PASS/FAIL line per run and a
# summary. A test that passes on a quiet machine but fails under load is a
# defect; this is how to show there is none.
#
#   scripts/stress-test.sh          # make test, 3 times, under stress-ng --cpu 2
#   RUNS=5 STRESS_CPUS=4 scripts/stress-test.sh
#   STRESS_CMD='go test -race -count=1 ./redisconn/' scripts/stress-test.sh 1
#
# stress-ng is stopped when the script ends, however it ends (success,
# failure, Ctrl-C, SIGTERM). Each run's output goes to $STRESS_LOGS/run-N.log.
set -uo pipefail
cd "$(dirname "$0")/.."

runs="${1:-${RUNS:-3}}"
cpus="${STRESS_CPUS:-2}"
cmd="${STRESS_CMD:-make test}"
logs="${STRESS_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/sessiongate-stress-XXXXXX")}"
case "$runs" in ''|*[!0-9]*|0) echo "stress-test: runs must be a positive integer, got '$runs'" >&2; exit 2;; esac
mkdir -p "$logs"

scripts/deps.sh stress-ng:stress-ng || exit 1

stress_pid=""
run_pid=""
# stop_run stops the run in progress (its whole process group: make, go
# test, the redis-servers and browsers the tests started).
stop_run() {
  [ -n "$run_pid" ] || return 0
  kill -TERM -- "-$run_pid" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
  run_pid=""
}
stop_stress() {
  [ -n "$stress_pid" ] || return 0
  # stress-ng runs in its own process group (setsid): stop the group it leads,
  # i.e. the workers it forked too, and nothing else.
  kill -TERM -- "-$stress_pid" 2>/dev/null || kill -TERM "$stress_pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$stress_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$stress_pid" 2>/dev/null || true
  wait "$stress_pid" 2>/dev/null || true
  stress_pid=""
}
trap 'stop_run; stop_stress' EXIT
trap 'stop_run; stop_stress; exit 130' INT
trap 'stop_run; stop_stress; exit 143' TERM

setsid stress-ng --cpu "$cpus" --quiet >"$logs/stress-ng.log" 2>&1 &
stress_pid=$!
sleep 1
if ! kill -0 "$stress_pid" 2>/dev/null; then
  echo "stress-test: stress-ng did not start" >&2
  exit 1
fi
echo "stress-test: stress-ng --cpu $cpus (pid $stress_pid); $runs run(s) of: $cmd; logs in $logs"

passed=0
summary=()
for i in $(seq "$runs"); do
  start=$(date +%s)
  # In its own process group, waited for in the background so a signal to
  # this script is handled at once (a foreground child would defer it).
  setsid bash -c "$cmd" >"$logs/run-$i.log" 2>&1 &
  run_pid=$!
  wait "$run_pid"
  rc=$?
  run_pid=""
  secs=$(( $(date +%s) - start ))
  if ! kill -0 "$stress_pid" 2>/dev/null; then
    line="run $i/$runs: INVALID (stress-ng was no longer running; exit $rc, ${secs}s, $logs/run-$i.log)"
    rc=1
  elif [ "$rc" -eq 0 ]; then
    line="run $i/$runs: PASS (${secs}s)"
    passed=$((passed + 1))
  else
    line="run $i/$runs: FAIL (exit $rc, ${secs}s, $logs/run-$i.log)"
    grep -E -- '^(--- FAIL|FAIL|not ok|make: \*\*\*)' "$logs/run-$i.log" | head -20 | sed 's/^/    /'
  fi
  echo "$line"
  summary+=("$line")
done

echo "stress-test summary ($cmd, stress-ng --cpu $cpus):"
printf '  %s\n' "${summary[@]}"
echo "stress-test: $passed/$runs passed"
[ "$passed" -eq "$runs" ]
