#!/usr/bin/env bash
# S3 server for tests: s3s-fs 0.14.1 (a crate's file-backed S3) on 127.0.0.1:${SPE_S3_PORT:-59000},
# data under ${SPE_PEERS_DIR:-/tmp/spe-peers}/s3/data, access key spe-test-access,
# secret key spe-test-secret-key, with bucket spe-results. Any region name is accepted.
#
# Usage: tests/peers/s3.sh start|stop|status|url
#   start  install s3s-fs if missing (cargo, ~3.5 min, one core), start it, print the endpoint URL
#   status exit 0 if the s3s-fs this script started is running
#   url    print the endpoint URL
#   stop   stop it (data is kept)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PORT=${SPE_S3_PORT:-59000}
DIR=$PEERS_DIR/s3
PIDF=$DIR/s3s-fs.pid
URL="http://127.0.0.1:$PORT"
BUCKET=spe-results

find_bin() { command -v s3s-fs || { f=${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs; [ -x "$f" ] && echo "$f"; }; }
# Any HTTP answer (403 without a signature) means the server is up.
answers() { curl -s -o /dev/null --max-time 2 "$URL/"; }

start() {
  local bin
  command -v curl >/dev/null || apt_install curl
  if ! bin=$(find_bin); then
    command -v cargo >/dev/null || die "s3s-fs missing and no cargo to build it"
    log "cargo install s3s-fs@0.14.1 (about 3.5 min on one core)"
    # -j 1 leaves the other core to whatever else is building. 0.17 needs a newer rustc.
    cargo install -q s3s-fs@0.14.1 --features binary --locked -j 1 >&2
    bin=$(find_bin) || die "s3s-fs not found after cargo install"
  fi
  # s3s-fs maps each top-level directory to a bucket.
  mkdir -p "$DIR/data/$BUCKET"
  if ! pid_alive "$PIDF"; then
    answers && die "port $PORT already answers but not from our s3s-fs (set SPE_S3_PORT)"
    log "starting s3s-fs on $URL"
    nohup setsid "$bin" --host 127.0.0.1 --port "$PORT" \
      --access-key spe-test-access --secret-key spe-test-secret-key \
      "$DIR/data" >"$DIR/s3s-fs.log" 2>&1 </dev/null &
    echo $! >"$PIDF"
  fi
  wait_for 20 answers || { tail -n 20 "$DIR/s3s-fs.log" >&2; die "s3s-fs does not answer on $URL"; }
  echo "$URL"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pidfile "$PIDF" 10 ;;
  status) pid_alive "$PIDF" ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
