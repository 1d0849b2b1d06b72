#!/usr/bin/env bash
# API conformance: starts wes-api on 127.0.0.1 (fresh SQLite, embedded defaults) and runs
# schemathesis against (1) the official GA4GH WES 1.1.0 spec vendored beside this script and
# (2) the service's own OpenAPI document as served at /ga4gh/wes/v1/openapi.json.
# Passes when no response is a server error or breaks the schema (see docs/testing.md).
#
# Usage: tests/contract/schemathesis.sh [path/to/wes-api]   (default: target/debug/wes-api)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/debug/wes-api}
[ -x "$bin" ] || { echo "no wes-api binary at $bin: run cargo build -p wes-api" >&2; exit 1; }
tools=$("$root/tests/peers/python-tools.sh")
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Conformance of the API's shapes, as one local user: SPE__AUTH=disabled (tests/auth.rs covers
# authentication against the real provider).
SPE__DATABASE__URL="sqlite://$work/spe.db" SPE__DATA_DIR="$work/runs" SPE__SLURM__ENABLED=false \
  SPE__AUTH=disabled RUST_LOG=warn \
  "$bin" --config "$root/deploy/config/spe.dev.yaml" --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 50); do grep -q 'listening on port' "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/listening on port/ {print $NF}' "$work/out")
[ -n "$port" ] || { cat "$work/err" >&2; echo "wes-api did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

# Not a server error, the status code is documented, and body, content type and headers match.
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# schemathesis keeps a cache in its working directory: keep it out of the tree.
cd "$work"
run_st() {
  "$tools/st" run "$@" --checks "$checks" --max-examples "${SPE_ST_EXAMPLES:-100}" --workers 2 \
    --seed 1 --no-color
}
echo "== schemathesis: official WES 1.1.0 spec"
run_st "$root/tests/contract/wes-1.1.0.openapi.yaml" --url "$base/ga4gh/wes/v1"
echo "== schemathesis: the service's own document"
# The health endpoints and WESkit's /weskit/v1/wf-info live outside the WES base path (their
# path items say so with their own `servers`), which schemathesis's --url does not honour;
# tests/api.rs covers them. The document
# declares bearer auth: a fixed well-formed token (ignored with auth disabled) keeps
# schemathesis from generating malformed Authorization headers, which end every case at 401.
run_st "$base/ga4gh/wes/v1/openapi.json" --url "$base/ga4gh/wes/v1" \
  --exclude-path /healthz --exclude-path /readyz --exclude-path /weskit/v1/wf-info -H "Authorization: Bearer schemathesis"
