# shellcheck shell=bash
# What the shell suites (tests/ops/backup-restore.sh, tests/deploy/apply.sh) share: counting
# checks, the skip rule for a missing prerequisite, and stopping the processes they started.
# Sourced after setting `suite` (the name in the summary line "<suite>: N passed, M failed"
# that tests/run-all.sh adds to its totals). The caller's EXIT trap prints that line.

passed=0 failed=0 died=0 skipped=0 err_line=""
ok() { passed=$((passed + 1)); echo "ok   $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND...: counts the command's success or failure.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# check_eq DESCRIPTION GOT WANT: counts GOT = WANT, and shows both when they differ.
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '     got:  %s\n     want: %s\n' "$2" "$3"; fi
}
# Fatal: counted, then the run ends (the EXIT trap cleans up and prints the summary).
die() { not_ok "$*"; died=1; exit 1; }
# A missing prerequisite: a failure under CI, a visible skip elsewhere.
missing() {
  case "${CI:-}" in
    "" | 0 | false) ;;
    *) die "$* (required under CI)" ;;
  esac
  echo "SKIPPED $suite: $*"
  skipped=1
  exit 0
}
# stop_pids PID...: SIGTERM, up to 10 s to go, then SIGKILL.
stop_pids() {
  local pid
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
}
# suite_report STATUS LOGDIR LINES: in the EXIT trap, before the work folder goes: a script
# that stopped early is a failure naming the line; after any failure, the last LINES lines of
# each LOGDIR/*.log.
suite_report() {
  if [ "$1" -ne 0 ] && [ "$died" = 0 ] && [ "$skipped" = 0 ]; then
    not_ok "the script stopped early: line ${err_line:-?} failed (exit $1)"
  fi
  [ "$failed" -ne 0 ] || return 0
  local log
  for log in "$2"/*.log; do
    [ -s "$log" ] || continue
    echo "--- last lines of $(basename "$log")"
    tail -n "$3" "$log"
  done
}
# suite_exit STATUS: the summary line (none when skipped), and the script's exit status.
suite_exit() {
  [ "$skipped" = 1 ] || echo "$suite: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  exit "$1"
}
