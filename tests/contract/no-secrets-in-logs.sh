#!/usr/bin/env bash
# Checks that no token handed out during a test run appears in what the run logged.
#
# Usage: tests/contract/no-secrets-in-logs.sh TOKENS_FILE LOG_FILE_OR_DIR...
#   TOKENS_FILE  one token or code a line: what the OIDC test provider issued during the run
#                (tests/peers/oidc.sh tokens)
#   LOG...       files, or folders searched recursively, holding everything the run printed
# Each token is looked for whole, and for JWTs also by their signature alone. Fails (exit 1)
# naming the file and line of each hit, never printing the token; fails as well when the tokens
# file is empty, since the check would then prove nothing.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 TOKENS_FILE LOG_FILE_OR_DIR..." >&2; exit 2; }
tokens=$1
shift
[ -s "$tokens" ] || { echo "no-secrets-in-logs: $tokens is empty or missing: no token was recorded" >&2; exit 1; }
patterns=$(mktemp)
trap 'rm -f "$patterns"' EXIT
chmod 600 "$patterns"
# Whole tokens, and the signature of every JWT (a token cut down to it must not leak either).
awk 'length($0) >= 8 {
  print
  n = split($0, part, ".")
  if (n == 3 && length(part[3]) >= 16) print part[3]
}' "$tokens" | sort -u >"$patterns"
count=$(wc -l <"$patterns")
# -F fixed strings, -r folders, -I skip binary files, -H -n file and line, -o only the hit,
# which cut then drops: the token itself is never printed.
hits=$(grep -rIFHn -o -f "$patterns" -- "$@" 2>/dev/null | cut -d: -f1,2 | sort -u || true)
if [ -n "$hits" ]; then
  echo "no-secrets-in-logs: tokens issued during the run appear in its logs at:" >&2
  printf '%s\n' "$hits" | sed 's/^/  /' >&2
  exit 1
fi
echo "no-secrets-in-logs: none of $count token patterns appears in $*"
