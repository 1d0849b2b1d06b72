#!/usr/bin/env bash
# Starts the SPE on this machine with its embedded defaults (deploy/config/spe.dev.yaml:
# SQLite under .spe-dev/, no authentication) and shows it working: service info, a run
# submitted, its status. Then it keeps serving until Ctrl-C (SPE_DEV_DETACH=1 returns instead,
# leaving wes-api running; stop it with `kill $(cat .spe-dev/wes-api.pid)`).
#
# Usage: deploy/dev/up.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
listen=${SPE_DEV_LISTEN:-127.0.0.1:8080}
base="http://$listen/ga4gh/wes/v1"
mkdir -p .spe-dev
say() { printf '\n[spe] %s\n' "$*"; }

say "building wes-api"
cargo build --quiet -p wes-api

if [ -s .spe-dev/wes-api.pid ] && kill -0 "$(cat .spe-dev/wes-api.pid)" 2>/dev/null; then
  say "stopping the wes-api started earlier (pid $(cat .spe-dev/wes-api.pid))"
  kill "$(cat .spe-dev/wes-api.pid)"; sleep 1
fi
say "starting wes-api on $listen (log: .spe-dev/wes-api.log)"
target/debug/wes-api --config deploy/config/spe.dev.yaml --listen "$listen" \
  >.spe-dev/wes-api.out 2>.spe-dev/wes-api.log &
echo $! >.spe-dev/wes-api.pid
for _ in $(seq 100); do curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$listen/readyz" >/dev/null || { tail -20 .spe-dev/wes-api.log; exit 1; }

say "GET /service-info"
curl -fsS "$base/service-info" | python3 -c 'import json,sys; i=json.load(sys.stdin); print(json.dumps({k: i[k] for k in ("name","version","supported_wes_versions","workflow_type_versions","system_state_counts")}, indent=1))'

say "POST /runs (the quals example workflow, as multipart/form-data like any WES client)"
run_id=$(curl -fsS -X POST "$base/runs" \
  -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals@1.0.0 \
  -F 'workflow_params={"dataset": "demo"}' -F 'tags={"source": "quick-start"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
echo "run_id: $run_id"

say "GET /runs/$run_id/status"
curl -fsS "$base/runs/$run_id/status"; echo

say "wes-api is serving at $base (OpenAPI: $base/openapi.json)"
if [ "${SPE_DEV_DETACH:-0}" = 1 ]; then exit 0; fi
say "Ctrl-C stops it"
trap 'kill "$(cat .spe-dev/wes-api.pid)" 2>/dev/null; exit 0' INT TERM
wait
