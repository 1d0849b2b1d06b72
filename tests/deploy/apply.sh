#!/usr/bin/env bash
# Applies ansible/site.yml to this machine (connection local) and runs the example workflow
# through the services it installed, as an operator's first day would (issue 15;
# docs/operator-guide.md, "Install with ansible"):
#
#  1. an inventory putting this host in every group, beside the peers already running here: the
#     one-node Slurm (its munge key), PostgreSQL (a fresh database), S3 and the OIDC provider;
#     the config is deploy/config/spe.example.yaml with its CHANGE values set to those peers
#     (tests/deploy/local-config.py); binaries from this checkout's target/debug
#  2. ansible-playbook site.yml: no task fails; a second run changes nothing
#  3. the accounts as docs/operator-guide.md promises: secrets files root's 0600; the crawler
#     cannot write run directories; the API cannot list the datasets; the API's ssh key reaches
#     the jobs' account only through the Slurm gate
#  4. the services started as their units say (tests/deploy/run-unit.py: User=, EnvironmentFile=,
#     ExecStart=; this machine has no systemd as PID 1, so the units' sandboxing is scored
#     offline by check.sh instead), and the host's sshd for the jobs' hop on 127.0.0.1
#  5. a data controller registers workflows/quals, a second approves it, the demo dataset goes
#     into the datasets' root; a researcher submits; the run is submitted as spe-jobs through
#     the hop, runs in Slurm and ends COMPLETE; its outputs are spe-jobs' files; the crawler
#     releases results.csv (the plot waits for review); the download through the short-lived
#     link is the run's file; both services stop on SIGTERM
#
# It changes this machine: accounts spe-api, spe-crawler and spe-jobs, /etc/spe, /usr/local/bin,
# /opt/spe, unit files under /etc/systemd/system, openssh-server, acl, bubblewrap. Run it on a
# machine for tests (CI's is one); it needs root. Everything listens on 127.0.0.1.
#
# Usage: tests/deploy/apply.sh   (tests/run-all.sh runs it after check.sh, which made the ansible
#        venv; last line: "deploy-apply: N passed, M failed")
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin_dir=${SPE_BIN_DIR:-$root/target/debug}
venv=${SPE_DEPLOY_VENV:-$HOME/.cache/spe/deploy-venv}

suite=deploy-apply
. tests/lib/suite.sh
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /var/tmp/spe-deploy.XXXXXX)
# The services' accounts reach the data folders below it.
chmod 0755 "$work"
logs=$work/logs
mkdir -p "$logs"
pids=()
database=""
exec 3>&1 4>&2
cleanup() {
  local status=$?
  set +e
  exec >&3 2>&4
  stop_pids "${pids[@]}"
  # Jobs the example left (none when it passed).
  scancel -u spe-jobs 2>/dev/null
  [ -z "$database" ] || psql -X -q -v ON_ERROR_STOP=1 "$SPE_TEST_POSTGRES_URL" \
    -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1
  suite_report "$status" "$logs" 15
  if [ -n "${SPE_DEPLOY_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
  suite_exit "$status"
}
trap cleanup EXIT
trap 'err_line="? (a signal stopped it)"; exit 1' INT TERM HUP
trap 'err_line=$LINENO' ERR

# --- prerequisites -------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || missing "it installs accounts and files: run it as root"
for b in wes-api results-crawler spe-runner spectl; do
  [ -x "$bin_dir/$b" ] || missing "no $bin_dir/$b (cargo build --workspace first, or set SPE_BIN_DIR)"
done
[ -x "$venv/bin/ansible-playbook" ] || missing "no ansible in $venv (tests/deploy/check.sh installs it)"
for peer in SPE_TEST_POSTGRES_URL SPE_TEST_S3_URL SPE_TEST_OIDC_URL; do
  [ -n "${!peer:-}" ] || missing "$peer is not set (tests/peers/*.sh start; tests/run-all.sh exports it)"
done
partition=$(sinfo -h -o %P 2>/dev/null | head -n1 | tr -d '*') || true
[ -n "$partition" ] || missing "no Slurm answers here (tests/peers/slurm.sh start)"
psql -X -q -c "SELECT 1" "$SPE_TEST_POSTGRES_URL" >/dev/null 2>&1 || missing "PostgreSQL does not answer at \$SPE_TEST_POSTGRES_URL"

# --- 1. inventory and config ---------------------------------------------------------------
database=spe_deploy_$$
psql -X -q -v ON_ERROR_STOP=1 "$SPE_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" \
  -c "CREATE DATABASE $database" >/dev/null
database_url="${SPE_TEST_POSTGRES_URL%/*}/$database"
listen=127.0.0.1:$(free_port)
metrics=127.0.0.1:$(free_port)
crawler_metrics=127.0.0.1:$(free_port)
ssh_port=$(free_port)
api="http://$listen/ga4gh/wes/v1"
# The cluster's shared file system, which exists before the playbook runs.
shared=$work/shared
install -d -m 0755 "$shared"
SPE_DEPLOY_LISTEN=$listen SPE_DEPLOY_METRICS_LISTEN=$metrics SPE_DEPLOY_CRAWLER_METRICS_LISTEN=$crawler_metrics \
  SPE_DEPLOY_RUNS_DIR=$shared/spe/runs SPE_DEPLOY_REGISTRY_DIR=$shared/spe/registry \
  SPE_DEPLOY_ISSUER=$SPE_TEST_OIDC_URL SPE_DEPLOY_S3_URL=$SPE_TEST_S3_URL SPE_DEPLOY_PARTITION=$partition \
  "$venv/bin/python" tests/deploy/local-config.py deploy/config/spe.example.yaml "$work/spe.yaml"
# The S3 test server has one key: both services get it here (with separate keys on a real
# provider, the s3_results role's policy keeps the API's read-only).
# Host variables: they rank above the playbook's group_vars, as an operator's inventory does.
cat >"$work/inventory.yml" <<EOF
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
      spe_data_dir: $shared/spe
      spe_datasets_dir: $shared/spe-datasets
      spe_binaries_dir: $bin_dir
      spe_config_src: $work/spe.yaml
      spe_database_url: "$database_url"
      spe_manage_services: false
      spe_job_ssh_port: $ssh_port
      wes_api_s3_access_key: spe-test-access
      wes_api_s3_secret_key: spe-test-secret-key
      wes_api_oidc_client_secret: spe-web-secret
      results_crawler_s3_access_key: spe-test-access
      results_crawler_s3_secret_key: spe-test-secret-key
      s3_results_dest_dir: $work/s3-policy
  children:
    spe_compute: { hosts: { localhost: {} } }
    spe_api: { hosts: { localhost: {} } }
    spe_crawler: { hosts: { localhost: {} } }
    spe_db: { hosts: {} }
EOF
ok "inventory for this host and config from spe.example.yaml (Slurm partition $partition)"

# --- 2. the playbook, twice ----------------------------------------------------------------
export ANSIBLE_HOME=$work/ansible-home ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_NOCOLOR=1
playbook() { (cd ansible && "$venv/bin/ansible-playbook" -i "$work/inventory.yml" site.yml) >"$logs/$1.log" 2>&1; }
recap() { sed -n 's/^localhost *: \(.*\)$/\1/p' "$logs/$1.log" | tr -s ' '; }
if playbook playbook-1; then ok "ansible-playbook site.yml applied: $(recap playbook-1)"; else
  grep -B2 -A12 'fatal:\|FAILED' "$logs/playbook-1.log" | head -60
  die "ansible-playbook site.yml failed: $(recap playbook-1)"
fi
if playbook playbook-2; then
  check_eq "a second run changes nothing" "$(recap playbook-2 | grep -o 'changed=[0-9]*')" "changed=0"
  awk '/^TASK/ {task = $0} /^changed:/ {print "     changed again: " task}' "$logs/playbook-2.log"
else
  die "the second ansible-playbook run failed: $(recap playbook-2)"
fi

# --- 3. accounts and permissions -----------------------------------------------------------
mode_of() { stat -c '%U:%G %a' "$1"; }
check_eq "wes-api's secrets are root's alone" "$(mode_of /etc/spe/wes-api.env)" "root:root 600"
check_eq "the crawler's secrets are root's alone" "$(mode_of /etc/spe/results-crawler.env)" "root:root 600"
check_eq "the receipt signing key is the crawler's alone" "$(mode_of /etc/spe/receipt.key)" "spe-crawler:spe-crawler 600"
check "the crawler cannot write the run directories" \
  sh -c "! runuser -u spe-crawler -- touch $shared/spe/runs/crawler-was-here 2>/dev/null"
check "the crawler can list the run directories" runuser -u spe-crawler -- ls "$shared/spe/runs"
check "the API cannot list the datasets" sh -c "! runuser -u spe-api -- ls $shared/spe-datasets >/dev/null 2>&1"
check "the jobs' account can list the datasets" runuser -u spe-jobs -- ls "$shared/spe-datasets"

# The host's sshd (a cluster's submit host runs one; nothing starts it here without systemd).
mkdir -p /run/sshd
/usr/sbin/sshd -o ListenAddress=127.0.0.1 -p "$ssh_port" -o PidFile="$work/sshd.pid" -E "$logs/sshd.log"
for _ in $(seq 50); do [ -s "$work/sshd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/sshd.pid")")
# The hop exactly as wes-api makes it: the env file's command prefix.
prefix=$(sed -n "s/^SPE__SLURM__COMMAND_PREFIX='\[\(.*\)\]'$/\1/p" /etc/spe/wes-api.env | sed 's/, / /g')
[ -n "$prefix" ] || die "no SPE__SLURM__COMMAND_PREFIX in /etc/spe/wes-api.env"
hop() { # hop ARGS...: runs ARGS through wes-api's ssh prefix, as spe-api
  # shellcheck disable=SC2086 # the prefix is words without spaces of their own
  runuser -u spe-api -- $prefix "$@" 2>&1
}
check_eq "the API's key reaches the jobs' account" "$(hop id -un)" "spe-jobs"
check_eq "the gate refuses anything but Slurm" "$(hop cat /etc/spe/wes-api.env)" "slurm-gate: cat is not allowed"

# --- 4. the services, as their units say -------------------------------------------------
start_unit() { # start_unit NAME: prints nothing; the pid goes to pids
  local pid
  pid=$("$venv/bin/python" tests/deploy/run-unit.py "$1" "$logs/$1.log")
  pids+=("$pid")
  eval "${1//-/_}_pid=$pid"
}
start_unit wes-api
for _ in $(seq 150); do curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
check "wes-api is ready (database, S3, OIDC, Slurm through the hop)" curl -fsS -o /dev/null "http://$listen/readyz"
check_eq "wes-api runs as spe-api" "$(ps -o user= -p "$wes_api_pid")" "spe-api"
start_unit results-crawler
for _ in $(seq 150); do curl -fsS "http://$crawler_metrics/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
check "the crawler is ready" curl -fsS -o /dev/null "http://$crawler_metrics/readyz"
check_eq "the crawler runs as spe-crawler" "$(ps -o user= -p "$results_crawler_pid")" "spe-crawler"

# --- 5. the example workflow ---------------------------------------------------------------
controller=$(tests/peers/oidc-token.sh controller)
controller2=$(tests/peers/oidc-token.sh controller2)
researcher=$(tests/peers/oidc-token.sh researcher)
call() { # call TOKEN METHOD PATH [JSON]: prints the body; fails on an HTTP error
  local out code
  out=$(mktemp)
  code=$(curl -sS -o "$out" -w '%{http_code}' -X "$2" -H "authorization: Bearer $1" \
    -H 'content-type: application/json' "$api$3" ${4:+-d "$4"})
  cat "$out"; rm -f "$out"
  # 000: nothing answered.
  [ "$code" -ge 200 ] && [ "$code" -lt 400 ] || { echo " (HTTP $code)" >&2; return 1; }
}
# The workflow's folder on the cluster, where the API may read it; the demo data where only jobs
# may (the datasets' root is root:spe-jobs 0750).
install -d -m 0755 "$work/staging"
cp -r workflows/quals "$work/staging/quals"
chmod -R a+rX "$work/staging"
install -d -o root -g spe-jobs -m 0750 "$shared/spe-datasets/quals-demo"
install -o root -g spe-jobs -m 0640 workflows/quals/data/* "$shared/spe-datasets/quals-demo/"
call "$controller" POST /admin/workflows "{\"source_dir\": \"$work/staging/quals\"}" >"$logs/register.json" ||
  die "registering quals: $(cat "$logs/register.json")"
ok "a data controller registered quals@1.0.0"
call "$controller2" POST /admin/workflows/quals/1.0.0/approve '{}' >"$logs/approve.json" ||
  die "approving quals: $(cat "$logs/approve.json")"
ok "a second data controller approved it"
call "$controller" POST /admin/datasets "{\"id\": \"quals-demo\", \"description\": \"synthetic variant calls\", \"location\": \"$shared/spe-datasets/quals-demo\", \"crypt4gh\": false}" \
  >"$logs/dataset.json" || die "registering the dataset: $(cat "$logs/dataset.json")"
ok "the demo dataset is registered in the datasets' root"
run_id=$(curl -fsS -X POST "$api/runs" -H "authorization: Bearer $researcher" \
  -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals@1.0.0 \
  -F 'workflow_params={"dataset": "quals-demo", "min_qual": 30}' | json 'd["run_id"]') || die "the researcher's POST /runs failed"
state=""
for _ in $(seq 600); do
  state=$(call "$researcher" GET "/runs/$run_id/status" | json 'd["state"]')
  case $state in COMPLETE | EXECUTOR_ERROR | SYSTEM_ERROR | CANCELED) break ;; esac
  sleep 0.5
done
check_eq "the run ended COMPLETE" "$state" "COMPLETE"
if [ "$state" != COMPLETE ]; then
  call "$researcher" GET "/runs/$run_id" | head -c 3000; echo
  die "the run did not complete"
fi
# WESkit's layout: <data_dir>/<first four characters of the run id>/<run id> (RunId::shard).
run_dir=$shared/spe/runs/${run_id:0:4}/$run_id
check_eq "its job ran as the jobs' account" "$(stat -c %U "$run_dir/results.csv")" "spe-jobs"
check "the crawler cannot write into a run's directory" \
  sh -c "! runuser -u spe-crawler -- touch $run_dir/crawler-was-here 2>/dev/null"
egress=""
for _ in $(seq 150); do
  egress=$(call "$researcher" GET "/runs/$run_id/egress" | json 'sorted((f["path"], f["state"]) for f in d["files"])')
  [ "$egress" = "[('plots/quals.svg', 'held'), ('results.csv', 'released')]" ] && break
  sleep 0.2
done
check_eq "the crawler released results.csv and holds the plot for review" "$egress" \
  "[('plots/quals.svg', 'held'), ('results.csv', 'released')]"
link=$(call "$researcher" POST "/results/$run_id/links" '{"path": "results.csv"}' | json 'd["url"]') ||
  die "no download link for results.csv"
curl -fsS -o "$work/results.csv" "$link" || die "the download link did not answer"
check "the downloaded results.csv is the run's" cmp -s "$work/results.csv" "$run_dir/results.csv"
check "wes-api counts the run on its metrics address" \
  sh -c "curl -fsS http://$metrics/metrics | grep -q '^spe_runs{state=\"COMPLETE\"} 1$'"

# Both stop on SIGTERM, as systemd stops them.
for name in results-crawler wes-api; do
  var=${name//-/_}_pid
  pid=${!var}
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  check "$name stops on SIGTERM" sh -c "! kill -0 $pid 2>/dev/null"
done
