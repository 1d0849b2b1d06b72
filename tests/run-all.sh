#!/usr/bin/env bash
# Runs every test of the project on this machine, starting the real peers it needs first.
# Usage: tests/run-all.sh        (the README's test command; .ci/run calls it too)
#
# 1. formatting and lints (cargo fmt --check, clippy -D warnings)
# 2. the Rust test suites of every crate: the store suite against SQLite and PostgreSQL, the
#    API black-box suites, and end-to-end runs through a real one-node Slurm and real Snakemake
# 3. backup and restore on PostgreSQL (tests/ops/backup-restore.sh: pg_dump of a database the
#    wes-api binary wrote, pg_restore into a fresh one, the audit chain verified against its
#    anchor, the API's view compared, a tampered restore caught)
# 4. API conformance with schemathesis against the official WES 1.1.0 spec
# 5. the HTTP benchmark harness in its short mode (tests/bench/http.sh --short: wes-api beside
#    Sapporo, small sizes), so that it cannot rot; the full mode is a documented command
# 6. the web UI in Debian's headless Chromium against the real stack (tests/browser/run.sh:
#    login through the provider's form, live run states, axe-core, screenshots to docs/ui/)
# 7. the deployment checks (tests/deploy/check.sh: ansible syntax and lint, the units' exposure,
#    the container files, the jobs' ssh gate, the bucket policy), started first in the background
#    (they need no build and no peer) and waited for at the end
# 8. the playbook applied to this machine (tests/deploy/apply.sh: ansible-playbook site.yml with
#    connection local against the one-node Slurm and the peers, twice; the services started as
#    their units say, as their own accounts; the example workflow submitted through the jobs'
#    ssh hop to COMPLETE and its results released and downloaded)
# 9. no token handed out by the OIDC test provider during the run appears in anything the run
#    printed (test output with --nocapture, schemathesis, the peers' logs)
#
# weskit-client needs Python >= 3.12, which Debian 12 lacks: tests/peers/python312.sh builds one
# (about 3 minutes of 2 cores, once per machine). It starts first, in the background at the
# lowest priority, so that it takes only the CPU the rest leaves idle (the peers' downloads,
# cargo's serial steps, and above all cargo test, whose suites mostly wait on Slurm and servers)
# without slowing the tests' timing; weskit-client's one test is left out of cargo test and run
# on its own after it, once the build is done. Waiting for the build before cargo test instead
# cost its full time: clippy and the build keep both cores busy, so the niced build barely moved.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }
# count_suite NAME LOGFILE: adds a script suite's "NAME: N passed, M failed" line to the totals,
# and its "SKIPPED NAME: ..." line, if any, to the skips listed at the end.
count_suite() {
  local p f
  p=$(sed -n "s/^$1: \([0-9]*\) passed, \([0-9]*\) failed\$/\1/p" "$2")
  f=$(sed -n "s/^$1: \([0-9]*\) passed, \([0-9]*\) failed\$/\2/p" "$2")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if grep -q "^SKIPPED $1:" "$2"; then
    skipped=$((skipped + 1))
    grep "^SKIPPED $1:" "$2" >>"$log"
  fi
}

step "deployment checks, in the background (tests/deploy/check.sh; reported at the end)"
deploy_log=$(mktemp)
tests/deploy/check.sh >"$deploy_log" 2>&1 &
deploy_pid=$!

step "Python >= 3.12 for weskit-client, in the background (tests/peers/python312.sh; waited for after cargo test)"
py312_log=$(mktemp)
nice -n 19 tests/peers/python312.sh >/dev/null 2>"$py312_log" &
py312_pid=$!
weskit_test=weskit_client_lists_workflows_and_execs_a_registered_one

step "peers: PostgreSQL on 127.0.0.1"
SPE_TEST_POSTGRES_URL=$(tests/peers/postgres.sh start)
export SPE_TEST_POSTGRES_URL

step "peers: S3 (s3s-fs) on 127.0.0.1"
SPE_TEST_S3_URL=$(tests/peers/s3.sh start)
export SPE_TEST_S3_URL

step "peers: OpenID Connect provider on 127.0.0.1 (npm oidc-provider)"
SPE_TEST_OIDC_URL=$(tests/peers/oidc.sh start)
export SPE_TEST_OIDC_URL
# Every token it issues from now on is appended here: this run's tokens only.
issued_tokens=$(tests/peers/oidc.sh tokens)
: >"$issued_tokens"

step "peers: one-node Slurm on localhost"
tests/peers/slurm.sh start

step "python tools (schemathesis, snakemake, the WES clients but weskit-client) in a venv"
tools=$(tests/peers/python-tools.sh)
export SPE_TOOLS_BIN=$tools

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (the end-to-end suites run the spe-runner binary inside Slurm jobs)"
cargo build --workspace --locked

step "cargo test (all but weskit-client's test, which waits for the Python built in the background)"
# Everything the run prints is kept here for the last step (--nocapture: passing tests' output
# too, not only failing ones').
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
log=$logs/cargo-test.log
set +e
SPE_TEST_LOG_STDERR=1 cargo test --workspace --locked -- --nocapture --skip "$weskit_test" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step "cargo test: weskit-client, in a venv of its own on the Python built in the background"
py312_status=0
wait "$py312_pid" || py312_status=$?
cat "$py312_log"
rm -f "$py312_log"
if [ "$py312_status" -eq 0 ]; then
  tests/peers/python-tools.sh --weskit >/dev/null
  set +e
  SPE_TEST_LOG_STDERR=1 cargo test -p wes-api --test clients --locked -- --nocapture --exact "$weskit_test" 2>&1 | tee -a "$log"
  weskit_status=${PIPESTATUS[0]}
  set -e
  [ "$weskit_status" -eq 0 ] || status=$weskit_status
else
  echo "tests/peers/python312.sh failed (its log above): no Python >= 3.12, so weskit-client's test could not run"
  status=1
fi
passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
# Tests whose peer was missing (spe-test-support's skip line; under CI they fail instead).
skipped=$({ grep -o 'SKIPPED [^ ]*:' "$log" || true; } | sort -u | wc -l)
[ "$status" -eq 0 ] || { echo "cargo test failed"; echo "$passed passed, $failed failed"; exit "$status"; }

step "backup and restore on PostgreSQL (tests/ops/backup-restore.sh; docs/operator-guide.md)"
set +e
tests/ops/backup-restore.sh 2>&1 | tee "$logs/backup-restore.log"
ops_status=${PIPESTATUS[0]}
set -e
count_suite backup-restore "$logs/backup-restore.log"
[ "$ops_status" -eq 0 ] || { echo "backup and restore failed"; echo "$passed passed, $failed failed"; exit 1; }

step "API conformance (schemathesis)"
tests/contract/schemathesis.sh "$root/target/debug/wes-api" 2>&1 | tee "$logs/schemathesis.log"

step "benchmark harness, short mode (wes-api beside Sapporo; docs/benchmarks.md)"
tests/bench/http.sh --short 2>&1 | tee "$logs/bench-http.log"

step "web UI in a real browser (tests/browser/run.sh; docs/ui.md)"
tests/browser/run.sh 2>&1 | tee "$logs/browser.log"

step "deployment checks (tests/deploy/check.sh; docs/operator-guide.md)"
deploy_status=0
wait "$deploy_pid" || deploy_status=$?
cat "$deploy_log"
count_suite deploy "$deploy_log"
rm -f "$deploy_log"
[ "$deploy_status" -eq 0 ] || { echo "deployment checks failed"; echo "$passed passed, $failed failed"; exit 1; }

step "the playbook applied to this machine, the example through the installed services (tests/deploy/apply.sh)"
set +e
tests/deploy/apply.sh 2>&1 | tee "$logs/deploy-apply.log"
apply_status=${PIPESTATUS[0]}
set -e
count_suite deploy-apply "$logs/deploy-apply.log"
[ "$apply_status" -eq 0 ] || { echo "applying the playbook failed"; echo "$passed passed, $failed failed"; exit 1; }

step "no token issued during the run appears in its output or logs"
peers_dir=${SPE_PEERS_DIR:-/tmp/spe-peers}
find "$peers_dir" -name '*.log' -type f -exec cp --parents {} "$logs" \; 2>/dev/null || true
tests/contract/no-secrets-in-logs.sh "$issued_tokens" "$logs"

echo
echo "all suites green"
echo "$passed passed, $failed failed, $skipped skipped for a missing peer"
[ "$skipped" -eq 0 ] || grep -o 'SKIPPED .*' "$log" | sort -u
