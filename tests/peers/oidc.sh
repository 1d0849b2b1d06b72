#!/usr/bin/env bash
# OpenID Connect provider for tests (a stand-in for LS-Login): npm `oidc-provider` (pinned in
# tests/peers/oidc/package-lock.json) run by tests/peers/oidc/server.mjs on 127.0.0.1.
#   port ${SPE_OIDC_PORT:-59100}      provider A, the issuer the SPE trusts (printed by start/url)
#   port ${SPE_OIDC_PORT:-59100} + 1  provider B, a second provider the SPE must not trust
#   port ${SPE_OIDC_PORT:-59100} + 2  test helper: visa issuers' JWKS (jku) and a signing endpoint
# Access tokens for resource urn:spe:api are RS256 JWTs with aud `spe-api`; without a resource
# they are opaque (userinfo, introspection: see server.mjs). Test users: researcher, researcher2,
# controller, collaborator, operator, nobody, shapeshifter (curl <helper>/users). A token for one, headless:
#   curl -u spe-test:spe-test-secret -d grant_type=urn:spe:test:user -d user=researcher <url>/token
# Keys are made at each start: tokens do not survive a restart. Test-only: never expose it.
# Every token and code it hands out is appended to the file `tokens` prints (for
# tests/contract/no-secrets-in-logs.sh). A running provider whose server.mjs has changed since
# it started is restarted by `start`.
#
# Usage: tests/peers/oidc.sh start|stop|status|url|tokens
#   start   npm ci into tests/peers/oidc/node_modules if needed, start it, print the issuer URL
#   status  exit 0 if the provider this script started is running
#   url     print the issuer URL
#   tokens  print the path of the file of issued tokens
#   stop    stop it
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PORT=${SPE_OIDC_PORT:-59100}
SRC=$(cd "$(dirname "$0")/oidc" && pwd)
DIR=$PEERS_DIR/oidc
PIDF=$DIR/oidc.pid
TOKENS=$DIR/issued-tokens.txt
URL="http://127.0.0.1:$PORT"
HELPER="http://127.0.0.1:$((PORT + 2))"

answers() {
  curl -sf -o /dev/null --max-time 2 "$URL/.well-known/openid-configuration" \
    && curl -sf -o /dev/null --max-time 2 "$HELPER/health"
}

start() {
  command -v curl >/dev/null || apt_install curl
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$DIR"
  # Test suites may call start concurrently: one at a time.
  exec 9>"$DIR/start.lock"
  flock 9
  # npm ci again only when the lock file changed since the last install.
  if [ ! -d "$SRC/node_modules/oidc-provider" ] \
    || ! cmp -s "$SRC/package-lock.json" "$SRC/node_modules/.spe-lock"; then
    log "npm ci (oidc-provider)"
    (cd "$SRC" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
    cp "$SRC/package-lock.json" "$SRC/node_modules/.spe-lock"
  fi
  # A provider started from another server.mjs is stale: restart it.
  if pid_alive "$PIDF" && ! cmp -s "$SRC/server.mjs" "$DIR/server.mjs.started"; then
    log "server.mjs changed since the provider started: restarting it"
    stop_pidfile "$PIDF" 10
  fi
  if ! pid_alive "$PIDF"; then
    answers && die "port $PORT already answers but not from our provider (set SPE_OIDC_PORT)"
    log "starting the OIDC provider on $URL"
    cp "$SRC/server.mjs" "$DIR/server.mjs.started"
    # 9>&-: the provider must not inherit (and so hold) the start lock.
    SPE_OIDC_PORT=$PORT SPE_OIDC_TOKEN_LOG=$TOKENS \
      nohup setsid node "$SRC/server.mjs" >"$DIR/oidc.log" 2>&1 </dev/null 9>&- &
    echo $! >"$PIDF"
  fi
  wait_for 20 answers || { tail -n 20 "$DIR/oidc.log" >&2; die "OIDC provider does not answer on $URL"; }
  echo "$URL"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pidfile "$PIDF" 10 ;;
  status) pid_alive "$PIDF" ;;
  url) echo "$URL" ;;
  tokens) echo "$TOKENS" ;;
  *) echo "usage: $0 start|stop|status|url|tokens" >&2; exit 2 ;;
esac
