#!/usr/bin/env bash
# Prints an access token (a JWT for the SPE API, aud spe-api) for one user of the test OIDC
# provider (tests/peers/oidc.sh), through its test-only grant: no browser. Test-only.
#
# Usage: tests/peers/oidc-token.sh USER
#   USER: researcher, researcher2, controller, collaborator, operator or nobody
# The issuer is $SPE_TEST_OIDC_URL, else what `tests/peers/oidc.sh url` prints (the provider must
# be running: tests/peers/oidc.sh start). Example:
#   SPE_TOKEN=$(tests/peers/oidc-token.sh researcher) spectl runs list
set -euo pipefail
user=${1:?usage: $0 USER (researcher, researcher2, controller, collaborator, operator, nobody)}
issuer=${SPE_TEST_OIDC_URL:-$("$(dirname "$0")/oidc.sh" url)}
issuer=${issuer%/}
answer=$(curl -sS --fail-with-body --max-time 10 -u spe-test:spe-test-secret \
  -d grant_type=urn:spe:test:user --data-urlencode "user=$user" -d resource=urn:spe:api \
  "$issuer/token") || { echo "no token for $user from $issuer: $answer" >&2; exit 1; }
token=$(printf '%s' "$answer" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "no access_token in the answer from $issuer" >&2; exit 1; }
printf '%s\n' "$token"
