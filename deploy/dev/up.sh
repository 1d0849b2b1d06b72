#!/usr/bin/env bash
# Starts the SPE on this machine with its embedded defaults and shows it working end to end:
#   1. a one-node Slurm (installed and started by tests/peers/slurm.sh where none is running)
#   2. the local identity provider (npm oidc-provider with LS-Login's claim shapes) and an S3
#      server (s3s-fs), both on 127.0.0.1
#   3. Snakemake in a Python venv
#   4. wes-api and results-crawler on deploy/config/spe.dev.yaml (SQLite under .spe-dev/)
#   5. a data controller (real token) registers and approves workflows/quals and its dataset
#   6. a researcher (real token) submits a run over WES and follows it to its end
#   7. the crawler releases the whitelisted outputs; the researcher shares them with the
#      collaborators' group; a collaborator lists them and downloads one through a short-lived link
# Then it keeps serving until Ctrl-C (SPE_DEV_DETACH=1 returns instead, leaving the services up;
# stop them with `kill $(cat .spe-dev/*.pid)`).
#
# Usage: deploy/dev/up.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
listen=127.0.0.1:8080   # the dev config's listen address and browser-login redirect
api="http://$listen/ga4gh/wes/v1"
mkdir -p .spe-dev
say() { printf '\n[spe] %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
stop_pidfile() { [ -s "$1" ] && kill "$(cat "$1")" 2>/dev/null && sleep 1; rm -f "$1"; }

say "1/7 Slurm: one node on localhost"
tests/peers/slurm.sh start
sinfo

say "2/7 identity provider and S3 server on 127.0.0.1"
echo "OIDC issuer: $(tests/peers/oidc.sh start)"
echo "S3 endpoint: $(tests/peers/s3.sh start)"

say "3/7 Snakemake (PyPI) in a venv"
tools=$(tests/peers/python-tools.sh)
"$tools/snakemake" --version

say "4/7 building and starting wes-api on $listen and results-crawler (logs in .spe-dev/)"
cargo build --quiet -p wes-api -p spe-runner -p results-crawler
stop_pidfile .spe-dev/wes-api.pid
stop_pidfile .spe-dev/results-crawler.pid
export SPE__WORKFLOWS__ENGINES__SNAKEMAKE__EXECUTABLE="$tools/snakemake"
export SPE__SLURM__JOB_PATH="$tools:/usr/local/bin:/usr/bin:/bin"
target/debug/wes-api --config deploy/config/spe.dev.yaml >.spe-dev/wes-api.out 2>.spe-dev/wes-api.log &
echo $! >.spe-dev/wes-api.pid
for _ in $(seq 100); do curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$listen/readyz" >/dev/null || { tail -20 .spe-dev/wes-api.log; exit 1; }
target/debug/results-crawler --config deploy/config/spe.dev.yaml 2>.spe-dev/results-crawler.log &
echo $! >.spe-dev/results-crawler.pid
sleep 0.5
kill -0 "$(cat .spe-dev/results-crawler.pid)" || { tail -20 .spe-dev/results-crawler.log; exit 1; }
curl -fsS "$api/service-info" | json '"service-info: %s %s, WES %s, types %s" % (d["name"], d["version"], d["supported_wes_versions"], sorted(d["workflow_type_versions"]))'

# Real access tokens from the local provider (its test-only grant stands in for a browser login).
controller=$(tests/peers/oidc-token.sh controller)
researcher=$(tests/peers/oidc-token.sh researcher)
collaborator=$(tests/peers/oidc-token.sh collaborator)
call() { # call TOKEN METHOD PATH [JSON]: prints the body, returns non-zero on an HTTP error
  local out code
  out=$(mktemp)
  code=$(curl -sS -o "$out" -w '%{http_code}' -X "$2" -H "authorization: Bearer $1" \
    -H 'content-type: application/json' "$api$3" ${4:+-d "$4"})
  cat "$out"; rm -f "$out"
  [ "$code" -lt 400 ] || { echo " (HTTP $code)" >&2; return 1; }
}

say "5/7 data controller: register and approve workflows/quals, register its demo dataset"
if out=$(call "$controller" POST /admin/workflows "{\"source_dir\": \"$root/workflows/quals\"}" 2>/dev/null); then
  echo "$out" | json '"registered %s@%s, digest %s..." % (d["name"], d["version"], d.get("registered_digest", "?")[:16])'
else echo "quals@1.0.0 is already registered"; fi
call "$controller" POST /admin/workflows/quals/1.0.0/approve '{}' >/dev/null 2>&1 && echo "approved quals@1.0.0" ||
  echo "quals@1.0.0 is already approved"
call "$controller" POST /admin/datasets "{\"id\": \"quals-demo\", \"description\": \"synthetic variant calls\", \"location\": \"$root/workflows/quals/data\", \"crypt4gh\": false}" >/dev/null 2>&1 &&
  echo "registered dataset quals-demo" || echo "dataset quals-demo is already registered"

say "6/7 researcher: POST /runs (multipart/form-data, as any WES client) and follow the run"
run_id=$(curl -fsS -X POST "$api/runs" -H "authorization: Bearer $researcher" \
  -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals@1.0.0 \
  -F 'workflow_params={"dataset": "quals-demo", "min_qual": 30}' -F 'tags={"source": "quick-start"}' |
  json 'd["run_id"]')
echo "run_id: $run_id"
last=""
for _ in $(seq 600); do
  state=$(call "$researcher" GET "/runs/$run_id/status" | json 'd["state"]')
  if [ "$state" != "$last" ]; then echo "$(date +%T) $state"; last=$state; fi
  case $state in COMPLETE|EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) break ;; esac
  sleep 0.5
done
call "$researcher" GET "/runs/$run_id/tasks" | json '"tasks: " + ", ".join("%s (exit %s)" % (t["name"], t.get("exit_code")) for t in d["task_logs"])'
[ "$state" = COMPLETE ] || { echo "the run ended $state"; exit 1; }

say "7/7 results: released by the crawler, shared with collaborators, downloaded by one"
for _ in $(seq 100); do
  n=$(call "$researcher" GET "/results/$run_id" | json 'len(d["files"])')
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
call "$researcher" GET "/results/$run_id" | json '"\n".join("released: %s (%s bytes, sha256 %s...)" % (f["path"], f["size"], f["sha256"][:12]) for f in d["files"])'
call "$researcher" POST "/runs/$run_id/shares" \
  '{"group": "urn:geant:lifescience-ri.eu:group:spe-demo:collaborators#login.aai.lifescience-ri.eu"}' >/dev/null
echo "shared with the collaborators' group"
link=$(call "$collaborator" POST "/results/$run_id/links" '{"path": "results.csv"}' | json 'd["url"]')
echo "collaborator's download link (valid 5 minutes): $link"
echo "results.csv, downloaded with it:"
curl -fsS "$link"

say "wes-api is serving at $api (OpenAPI: $api/openapi.json); browser login: http://$listen/auth/login"
if [ "${SPE_DEV_DETACH:-0}" = 1 ]; then exit 0; fi
say "Ctrl-C stops it"
trap 'kill "$(cat .spe-dev/wes-api.pid)" "$(cat .spe-dev/results-crawler.pid)" 2>/dev/null; exit 0' INT TERM
wait
