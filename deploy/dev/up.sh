#!/usr/bin/env bash
# Starts the SPE on this machine with its embedded defaults and shows the main job end to end:
#   1. a one-node Slurm (installed and started by tests/peers/slurm.sh where none is running)
#   2. Snakemake in a Python venv (tests/peers/python-tools.sh)
#   3. wes-api on deploy/config/spe.dev.yaml (SQLite under .spe-dev/, no authentication)
#   4. the example workflow `quals` registered and approved, its demo dataset registered
#   5. a run submitted over WES and followed to its end, state by state; its outputs and tasks
# Then it keeps serving until Ctrl-C (SPE_DEV_DETACH=1 returns instead, leaving wes-api up;
# stop it with `kill $(cat .spe-dev/wes-api.pid)`).
#
# Usage: deploy/dev/up.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
listen=${SPE_DEV_LISTEN:-127.0.0.1:8080}
api="http://$listen/ga4gh/wes/v1"
mkdir -p .spe-dev
say() { printf '\n[spe] %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

say "1/5 Slurm: one node on localhost"
tests/peers/slurm.sh start
sinfo

say "2/5 Snakemake (PyPI) in a venv"
tools=$(tests/peers/python-tools.sh)
"$tools/snakemake" --version

say "3/5 building and starting wes-api on $listen (log: .spe-dev/wes-api.log)"
cargo build --quiet -p wes-api -p spe-runner
if [ -s .spe-dev/wes-api.pid ] && kill -0 "$(cat .spe-dev/wes-api.pid)" 2>/dev/null; then
  kill "$(cat .spe-dev/wes-api.pid)"; sleep 1
fi
SPE__WORKFLOWS__ENGINES__SNAKEMAKE__EXECUTABLE="$tools/snakemake" \
SPE__SLURM__JOB_PATH="$tools:/usr/local/bin:/usr/bin:/bin" \
  target/debug/wes-api --config deploy/config/spe.dev.yaml --listen "$listen" \
  >.spe-dev/wes-api.out 2>.spe-dev/wes-api.log &
echo $! >.spe-dev/wes-api.pid
for _ in $(seq 100); do curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$listen/readyz" >/dev/null || { tail -20 .spe-dev/wes-api.log; exit 1; }
curl -fsS "$api/service-info" | json '"service-info: %s %s, WES %s, types %s" % (d["name"], d["version"], d["supported_wes_versions"], sorted(d["workflow_type_versions"]))'

say "4/5 data controller: register and approve workflows/quals, register the demo dataset"
post() { curl -sS -o .spe-dev/last.json -w '%{http_code}' -X POST -H 'content-type: application/json' "$api$1" -d "$2"; }
code=$(post /admin/workflows "{\"source_dir\": \"$root/workflows/quals\"}")
case $code in 201) json '"registered %s@%s, digest %s" % (d["name"], d["version"], d.get("registered_digest", "?")[:16])' <.spe-dev/last.json ;;
  409) echo "quals@1.0.0 is already registered" ;; *) cat .spe-dev/last.json; exit 1 ;; esac
code=$(post /admin/workflows/quals/1.0.0/approve '{}')
case $code in 200) echo "approved quals@1.0.0" ;; 409) echo "quals@1.0.0 is already approved" ;; *) cat .spe-dev/last.json; exit 1 ;; esac
code=$(post /admin/datasets "{\"id\": \"quals-demo\", \"description\": \"synthetic variant calls\", \"location\": \"$root/workflows/quals/data\", \"crypt4gh\": false}")
case $code in 201) echo "registered dataset quals-demo" ;; 409) echo "dataset quals-demo is already registered" ;; *) cat .spe-dev/last.json; exit 1 ;; esac

say "5/5 researcher: POST /runs (multipart/form-data, as any WES client) and follow the run"
run_id=$(curl -fsS -X POST "$api/runs" \
  -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals@1.0.0 \
  -F 'workflow_params={"dataset": "quals-demo", "min_qual": 30}' -F 'tags={"source": "quick-start"}' |
  json 'd["run_id"]')
echo "run_id: $run_id"
last=""
for _ in $(seq 600); do
  state=$(curl -fsS "$api/runs/$run_id/status" | json 'd["state"]')
  if [ "$state" != "$last" ]; then echo "$(date +%T) $state"; last=$state; fi
  case $state in COMPLETE|EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) break ;; esac
  sleep 0.5
done
curl -fsS "$api/runs/$run_id" | json '"exit code %s; stdout %s" % (d["run_log"].get("exit_code"), d["run_log"].get("stdout"))'
curl -fsS "$api/runs/$run_id/tasks" | json '"tasks: " + ", ".join("%s (exit %s)" % (t["name"], t.get("exit_code")) for t in d["task_logs"])'
run_dir=".spe-dev/runs/${run_id:0:4}/$run_id"
echo "outputs in $run_dir (they stay on the cluster until released):"
ls -l "$run_dir/results.csv" "$run_dir/plots/quals.svg"
[ "$state" = COMPLETE ] || { echo "the run ended $state"; exit 1; }

say "wes-api is serving at $api (OpenAPI: $api/openapi.json)"
if [ "${SPE_DEV_DETACH:-0}" = 1 ]; then exit 0; fi
say "Ctrl-C stops it"
trap 'kill "$(cat .spe-dev/wes-api.pid)" 2>/dev/null; exit 0' INT TERM
wait
