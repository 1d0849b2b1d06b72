# shellcheck shell=bash disable=SC2034
# Shared helpers for the peer scripts in this folder; sourced, not run.
# Everything here writes to stderr: stdout belongs to each script's one documented line.

PEERS_DIR=${SPE_PEERS_DIR:-/tmp/spe-peers}
# Daemons and admin tools live in sbin, which some environments leave off PATH.
PATH=$PATH:/usr/sbin:/sbin

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "error: $*"; exit 1; }

# One apt-get at a time (flock on this file): tests/run-all.sh builds Python (python312.sh) in the
# background while it starts the other peers, and a second apt-get beside a first fails on dpkg's
# lock instead of waiting.
APT_LOCK=/tmp/spe-apt.lock

# apt_install PKG...: the package lists are refreshed once per run, and only when something is missing.
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to run: apt-get install $*"
  log "installing $* (apt)"
  local updated=${_APT_UPDATED:-}
  (
    flock 8
    if [ -z "$updated" ]; then apt-get update -qq >&2 || exit 10; fi
    # The timeout covers an apt that is not ours (e.g. unattended-upgrades).
    DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=300 -y -qq \
      --no-install-recommends "$@" >&2 || exit 11
  ) 8>"$APT_LOCK" || case $? in
    10) die "apt-get update failed" ;;
    *) die "apt-get install $* failed" ;;
  esac
  _APT_UPDATED=1
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# pid_alive FILE: the process named in a pid file still exists.
pid_alive() { [ -s "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

# stop_pidfile FILE [SECONDS]: SIGTERM the process in FILE, SIGKILL if it outlives SECONDS.
stop_pidfile() {
  local f=$1 t=${2:-10} pid
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid=$(head -n1 "$f")
  kill "$pid" 2>/dev/null || true
  if ! wait_for "$t" bash -c "! kill -0 $pid"; then
    log "pid $pid ignored SIGTERM for ${t}s; killing"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
