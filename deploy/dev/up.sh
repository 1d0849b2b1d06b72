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
#   8-9. a data controller approves the held plot; the collaborator verifies the signed receipt;
#      the data controller verifies the audit chain
#   10. Crypt4GH end to end: a run on the Crypt4GH-encrypted copy of the dataset (decrypted only
#      inside the job's sandbox) whose results.csv is stored encrypted; the collaborator
#      downloads it bound to their own key and decrypts it with Python crypt4gh
# Then it keeps serving until Ctrl-C, which stops wes-api and the crawler.
#
# Usage: deploy/dev/up.sh          as above
#        SPE_DEV_DETACH=1 deploy/dev/up.sh
#                                  returns once the result is downloaded (.spe-dev/results.csv),
#                                  leaving what it started running (.ci/run does this)
#        deploy/dev/up.sh stop     stops exactly what up.sh started: wes-api, the crawler, and
#                                  each peer that was not already running when it started it
#                                  (.spe-dev/started-peers); peers it found running stay up
# SPE_DEV_LISTEN (default 127.0.0.1:8080) and SPE_DEV_METRICS_LISTEN (127.0.0.1:9464) move
# wes-api and the crawler's metrics; browser login needs 8080, the provider's registered
# redirect.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
listen=${SPE_DEV_LISTEN:-127.0.0.1:8080}   # the dev config's listen address and browser-login redirect
metrics_listen=${SPE_DEV_METRICS_LISTEN:-127.0.0.1:9464}
api="http://$listen/ga4gh/wes/v1"
say() { printf '\n[spe] %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# stop_service NAME: stops the process in .spe-dev/NAME.pid if it is still our target/debug/NAME
# (a pid reused by another process is left alone).
stop_service() {
  local f=.spe-dev/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if ps -o args= -p "$pid" 2>/dev/null | grep -q "^target/debug/$1 "; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

# start_peer NAME: starts tests/peers/NAME.sh; a peer that was not running before is recorded in
# .spe-dev/started-peers, for `stop`.
start_peer() {
  local before=running
  tests/peers/"$1".sh status >/dev/null 2>&1 || before=stopped
  tests/peers/"$1".sh start
  if [ "$before" = stopped ] && ! grep -qxF "$1" .spe-dev/started-peers 2>/dev/null; then
    echo "$1" >>.spe-dev/started-peers
  fi
}

if [ "${1:-}" = stop ]; then
  stop_service results-crawler
  stop_service wes-api
  if [ -s .spe-dev/started-peers ]; then
    for peer in $(tac .spe-dev/started-peers); do
      tests/peers/"$peer".sh stop && echo "stopped peer $peer"
    done
  fi
  rm -f .spe-dev/started-peers
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [stop]" >&2; exit 2; }
mkdir -p .spe-dev

say "1/10 Slurm: one node on localhost"
start_peer slurm
sinfo

say "2/10 identity provider and S3 server on 127.0.0.1"
issuer=$(start_peer oidc)
echo "OIDC issuer: $issuer"
s3=$(start_peer s3)
echo "S3 endpoint: $s3"

say "3/10 Snakemake (PyPI) in a venv"
tools=$(tests/peers/python-tools.sh)
"$tools/snakemake" --version

say "4/10 building and starting wes-api on $listen and results-crawler (logs in .spe-dev/)"
cargo build --quiet -p wes-api -p spe-runner -p results-crawler -p spectl
stop_service wes-api
stop_service results-crawler
# The crawler signs each released package's RO-Crate (an egress receipt); wes-api publishes the
# public key (docs/ro-crate.md).
[ -s .spe-dev/receipt.key ] || target/debug/spectl keys generate --signing \
  --secret-key .spe-dev/receipt.key --public-key .spe-dev/receipt.pub >/dev/null
# The service's Crypt4GH key pair (docs/crypt4gh.md): data providers encrypt to its public key;
# jobs decrypt encrypted datasets with the secret key, wes-api re-wraps encrypted results to
# each reader. The passphrase stays in a 0600 file, never in the environment or a log.
if [ ! -s .spe-dev/service-c4gh.sec ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 >.spe-dev/service-c4gh.pass)
  target/debug/spectl keys generate --secret-key .spe-dev/service-c4gh.sec \
    --public-key .spe-dev/service-c4gh.pub --passphrase-file .spe-dev/service-c4gh.pass >/dev/null
fi
export SPE__CRYPT4GH__SECRET_KEYS="[$root/.spe-dev/service-c4gh.sec]"
export SPE__CRYPT4GH__PUBLIC_KEY=$root/.spe-dev/service-c4gh.pub
export SPE__CRYPT4GH__PASSPHRASE_FILE=$root/.spe-dev/service-c4gh.pass
export SPE__RECEIPTS__SIGNING_KEY=$root/.spe-dev/receipt.key
export SPE__RECEIPTS__PUBLIC_KEY=$root/.spe-dev/receipt.pub
export SPE__WORKFLOWS__ENGINES__SNAKEMAKE__EXECUTABLE="$tools/snakemake"
export SPE__SLURM__JOB_PATH="$tools:/usr/local/bin:/usr/bin:/bin"
export SPE__SERVER__LISTEN=$listen SPE__CRAWLER__METRICS_LISTEN=$metrics_listen
# Every output to a file: a detached service must not hold the caller's stdout open.
target/debug/wes-api --config deploy/config/spe.dev.yaml </dev/null >.spe-dev/wes-api.out 2>.spe-dev/wes-api.log &
echo $! >.spe-dev/wes-api.pid
for _ in $(seq 100); do curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$listen/readyz" >/dev/null || { tail -20 .spe-dev/wes-api.log; exit 1; }
target/debug/results-crawler --config deploy/config/spe.dev.yaml </dev/null >.spe-dev/results-crawler.out 2>.spe-dev/results-crawler.log &
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

say "5/10 data controller: register and approve workflows/quals (and quals-sealed), register its demo dataset and upload an encrypted copy"
if out=$(call "$controller" POST /admin/workflows "{\"source_dir\": \"$root/workflows/quals\"}" 2>/dev/null); then
  echo "$out" | json '"registered %s@%s, digest %s..." % (d["name"], d["version"], d.get("registered_digest", "?")[:16])'
else echo "quals@1.0.0 is already registered"; fi
call "$controller" POST /admin/workflows/quals/1.0.0/approve '{}' >/dev/null 2>&1 && echo "approved quals@1.0.0" ||
  echo "quals@1.0.0 is already approved"
call "$controller" POST /admin/datasets "{\"id\": \"quals-demo\", \"description\": \"synthetic variant calls\", \"location\": \"$root/workflows/quals/data\", \"crypt4gh\": false}" >/dev/null 2>&1 &&
  echo "registered dataset quals-demo" || echo "dataset quals-demo is already registered"

# The data provider's side: the same calls, encrypted with Python crypt4gh to the service's
# public key as wes-api publishes it. The data controller registers a Crypt4GH dataset and
# uploads the file under a time-limited grant (spectl dataset upload); wes-api keeps it only
# because its header opens with the service's key.
mkdir -p .spe-dev/provider
curl -fsS "$api/keys/service.pub" >.spe-dev/provider/service.pub
"$tools/crypt4gh" encrypt --recipient_pk .spe-dev/provider/service.pub \
  <workflows/quals/data/calls.tsv >.spe-dev/provider/calls.tsv.c4gh
echo "data provider: calls.tsv encrypted to the service's published key (Python crypt4gh)"
call "$controller" POST /admin/datasets "{\"id\": \"quals-demo-c4gh\", \"description\": \"synthetic variant calls, Crypt4GH-encrypted\", \"location\": \"$root/.spe-dev/quals-demo-c4gh\", \"crypt4gh\": true}" >/dev/null 2>&1 &&
  echo "registered dataset quals-demo-c4gh (crypt4gh: true)" || echo "dataset quals-demo-c4gh is already registered"
if [ -e .spe-dev/quals-demo-c4gh/calls.tsv.c4gh ]; then
  echo "quals-demo-c4gh has calls.tsv.c4gh already"
else
  SPE_URL="http://$listen" SPE_TOKEN=$controller target/debug/spectl dataset upload quals-demo-c4gh \
    .spe-dev/provider/calls.tsv.c4gh
fi
# A version of the workflow whose egress rule stores results.csv Crypt4GH-encrypted.
rm -rf .spe-dev/quals-sealed && cp -r workflows/quals .spe-dev/quals-sealed
sed -i 's/^name: quals$/name: quals-sealed/' .spe-dev/quals-sealed/workflow.yaml
printf '  encrypt:\n    - { glob: results.csv, with: crypt4gh }\n' >>.spe-dev/quals-sealed/workflow.yaml
if call "$controller" POST /admin/workflows "{\"source_dir\": \"$root/.spe-dev/quals-sealed\"}" >/dev/null 2>&1; then
  echo "registered quals-sealed@1.0.0 (egress: results.csv stored encrypted)"
else echo "quals-sealed@1.0.0 is already registered"; fi
call "$controller" POST /admin/workflows/quals-sealed/1.0.0/approve '{}' >/dev/null 2>&1 && echo "approved quals-sealed@1.0.0" ||
  echo "quals-sealed@1.0.0 is already approved"

say "6/10 researcher: POST /runs (multipart/form-data, as any WES client) and follow the run"
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

say "7/10 egress: the crawler releases results.csv and holds the plot (an image) for review"
egress=""
for _ in $(seq 150); do
  egress=$(call "$researcher" GET "/runs/$run_id/egress")
  ready=$(echo "$egress" | json 'sorted((f["path"], f["state"]) for f in d["files"]) == [("plots/quals.svg", "held"), ("results.csv", "released")]')
  [ "$ready" = True ] && break
  sleep 0.2
done
echo "$egress" | json '"\n".join("%s: %s%s" % (f["path"], f["state"], " (" + f["reason"] + ")" if f.get("reason") else "") for f in d["files"])'
[ "$ready" = True ] || { echo "egress did not settle as expected"; exit 1; }

say "8/10 data controller approves the plot; the researcher shares the results; a collaborator downloads"
call "$controller" GET "/admin/reviews?state=open" | json '"\n".join("review request: run %s, %s held file(s), opened %s" % (r["run_id"], r["held_files"], r["opened_at"]) for r in d["requests"])'
call "$controller" GET "/admin/reviews/$run_id/preview?path=plots/quals.svg" |
  json '"looked at plots/quals.svg: %s, %s bytes, sha256 %s..." % (d["preview"].get("media_type", d["preview"]["kind"]), d["size"], d["sha256"][:12])'
call "$controller" POST "/admin/reviews/$run_id/votes" '{"path": "plots/quals.svg", "vote": "approve", "comment": "aggregate histogram, no small cells"}' |
  json '"vote recorded: %s -> %s" % (d["path"], d["decision"])'
for _ in $(seq 150); do
  n=$(call "$researcher" GET "/results/$run_id" | json 'len(d["files"])')
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
call "$researcher" GET "/results/$run_id" | json '"\n".join("released: %s (%s bytes, sha256 %s...)" % (f["path"], f["size"], f["sha256"][:12]) for f in d["files"])'
[ "$n" -ge 2 ] || { echo "the approved plot was not released"; exit 1; }
call "$researcher" POST "/runs/$run_id/shares" \
  '{"group": "urn:geant:lifescience-ri.eu:group:spe-demo:collaborators#login.aai.lifescience-ri.eu"}' >/dev/null
echo "shared with the collaborators' group"
link=$(call "$collaborator" POST "/results/$run_id/links" '{"path": "results.csv"}' | json 'd["url"]')
echo "collaborator's download link (valid 5 minutes): $link"
echo "results.csv, downloaded with it (.spe-dev/results.csv):"
curl -fsS -o .spe-dev/results.csv "$link"
cat .spe-dev/results.csv
echo "$run_id" >.spe-dev/last-run

say "9/10 the collaborator checks the signed receipt; the data controller verifies the audit chain"
export SPE_URL="http://$listen"
verified=""
for _ in $(seq 20); do
  # The crawler re-signs the package's RO-Crate when the approved plot joins it.
  rm -rf .spe-dev/package
  if SPE_TOKEN=$collaborator target/debug/spectl results download "$run_id" --dir .spe-dev/package >/dev/null 2>&1 &&
    verified=$(SPE_TOKEN=$collaborator target/debug/spectl results verify "$run_id" --dir .spe-dev/package 2>&1); then
    break
  fi
  verified=""
  sleep 0.5
done
[ -n "$verified" ] || { SPE_TOKEN=$collaborator target/debug/spectl results verify "$run_id" --dir .spe-dev/package; exit 1; }
echo "$verified"
SPE_TOKEN=$controller target/debug/spectl audit verify

say "10/10 Crypt4GH: a run on the encrypted dataset; its results.csv leaves encrypted to the collaborator's key"
sealed_run=$(curl -fsS -X POST "$api/runs" -H "authorization: Bearer $researcher" \
  -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals-sealed@1.0.0 \
  -F 'workflow_params={"dataset": "quals-demo-c4gh", "min_qual": 30}' -F 'tags={"source": "quick-start"}' |
  json 'd["run_id"]')
echo "run_id: $sealed_run (decrypts its input only inside the job's sandbox)"
for _ in $(seq 600); do
  state=$(call "$researcher" GET "/runs/$sealed_run/status" | json 'd["state"]')
  case $state in COMPLETE|EXECUTOR_ERROR|SYSTEM_ERROR|CANCELED) break ;; esac
  sleep 0.5
done
echo "$(date +%T) $state"
[ "$state" = COMPLETE ] || { call "$researcher" GET "/runs/$sealed_run" | head -c 2000; exit 1; }
for _ in $(seq 150); do
  stored=$(call "$researcher" GET "/results/$sealed_run" | json '[f.get("encryption") for f in d["files"] if f["path"] == "results.csv"]')
  [ "$stored" = "['crypt4gh']" ] && break
  sleep 0.2
done
[ "$stored" = "['crypt4gh']" ] || { echo "results.csv of $sealed_run was not released encrypted ($stored)"; exit 1; }
echo "results.csv released, stored in the bucket encrypted to the service's key"
call "$researcher" POST "/runs/$sealed_run/shares" \
  '{"group": "urn:geant:lifescience-ri.eu:group:spe-demo:collaborators#login.aai.lifescience-ri.eu"}' >/dev/null
# The collaborator's own key pair; its public half registered (LS-Login's crypt4ghPublicKeys
# claim would do instead).
if [ ! -s .spe-dev/collaborator-c4gh.sec ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 >.spe-dev/collaborator-c4gh.pass)
  target/debug/spectl keys generate --secret-key .spe-dev/collaborator-c4gh.sec \
    --public-key .spe-dev/collaborator-c4gh.pub --passphrase-file .spe-dev/collaborator-c4gh.pass >/dev/null
fi
SPE_TOKEN=$collaborator target/debug/spectl results register-key --public-key .spe-dev/collaborator-c4gh.pub
rm -rf .spe-dev/sealed && SPE_TOKEN=$collaborator target/debug/spectl results download "$sealed_run" results.csv --dir .spe-dev/sealed
C4GH_PASSPHRASE=$(cat .spe-dev/collaborator-c4gh.pass) "$tools/crypt4gh" decrypt --sk .spe-dev/collaborator-c4gh.sec \
  <.spe-dev/sealed/results.csv.c4gh >.spe-dev/sealed/results.csv
cmp .spe-dev/sealed/results.csv .spe-dev/results.csv ||
  { echo "the decrypted results.csv differs from the plaintext run's"; exit 1; }
echo "decrypted with Python crypt4gh and the collaborator's key: same as the plaintext run's results.csv"
echo "$sealed_run" >.spe-dev/last-sealed-run

say "wes-api is serving at $api (OpenAPI: $api/openapi.json)"
# The provider's dev login form takes the account id, which is the test user's `sub`.
helper="http://127.0.0.1:$((${issuer##*:} + 2))"
login=$(curl -fsS "$helper/users" | json 'd["researcher"]["sub"]')
say "web UI: http://$listen/ (docs/ui.md) -- log in as the researcher: login $login, any password"
if [ "${SPE_DEV_DETACH:-0}" = 1 ]; then
  echo "detached: deploy/dev/up.sh stop stops what this started"
  exit 0
fi
say "Ctrl-C stops it"
trap 'stop_service results-crawler; stop_service wes-api; exit 0' INT TERM
wait
