# shellcheck shell=bash
# What the shell suites (tests/ops/backup-restore.sh, tests/deploy/apply.sh) share: counting
# checks, the skip rule for a missing prerequisite, and stopping the processes they started.
# Sourced after setting `suite` (the name in the summary line "<suite>: N passed, M failed"
# that tests/run-all.sh adds to its totals). The caller's EXIT trap prints that line.

passed=0 failed=0 died=0 skipped=0
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
