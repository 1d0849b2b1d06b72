#!/usr/bin/env bash
# Backup and restore of a PostgreSQL deployment, tested as an operator would do it
# (docs/operator-guide.md, "Backups and restore"):
#
#  1. a fresh database on the PostgreSQL test peer; the real wes-api on it (dev config, auth
#     off, Slurm off, 127.0.0.1 on a port of its own); audit records made through the API:
#     workflows registered, approved and retired, a dataset registered, runs submitted, one
#     cancelled;
#  2. what the API shows is recorded (runs with their full RunLogs, the workflow registry,
#     datasets, the state counts, the audit chain exported), and `spectl audit verify` gives
#     the head;
#  3. `pg_dump --format=custom` while wes-api serves; wes-api stopped (SIGTERM): the head it
#     logs on shutdown (`audit chain anchor`) is the anchor kept outside the database;
#  4. `pg_restore` into a second fresh database; wes-api started on it: the chain verifies, with
#     the anchor too (`spectl audit verify --anchor`) and in the service's own walk
#     (/ui/audit/verification); runs, registry, datasets, counts and the exported chain are the
#     same as before; the append-only trigger came back with the tables; a new record continues
#     the chain from the anchored head; then, with a migration of a newer release recorded in
#     it, wes-api refuses to start on it (a binary is not rolled back over a migrated database);
#  5. the dump restored into a third database and tampered with as a database administrator
#     could (triggers disabled): with the head deleted, a plain verify still passes but the
#     anchor names the loss; with a record changed, verify names that record.
#
# Binaries: wes-api and spectl from $SPE_BIN_DIR (default: this checkout's target/debug, which
# tests/run-all.sh builds first). PostgreSQL: $SPE_TEST_POSTGRES_URL, else
# tests/peers/postgres.sh start; its client tools from /usr/lib/postgresql/<newest>/bin. Any of
# these missing fails under CI (CI set to anything but empty, 0 or false) and skips visibly
# otherwise ("SKIPPED backup-restore: ..."). The databases, processes and files it makes are
# removed on exit; everything listens on 127.0.0.1.
#
# Usage: tests/ops/backup-restore.sh   (last line: "backup-restore: N passed, M failed")
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin_dir=${SPE_BIN_DIR:-$root/target/debug}

suite=backup-restore
. tests/lib/suite.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/spe-backup-restore.XXXXXX")
pids=()
databases=()
# The script's own stdout and stderr, for the summary: a signal may stop it inside a command
# whose output goes elsewhere, and the trap would inherit that.
exec 3>&1 4>&2
cleanup() {
  local status=$?
  set +e
  exec >&3 2>&4
  stop_pids "${pids[@]}"
  for db in "${databases[@]}"; do
    sql "$admin_url" "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
      echo "backup-restore: could not drop database $db" >&2
  done
  suite_report "$status" "$work" 5
  rm -rf "$work"
  suite_exit "$status"
}
trap cleanup EXIT
trap 'err_line="? (a signal stopped it)"; exit 1' INT TERM HUP
trap 'err_line=$LINENO' ERR

# --- prerequisites -------------------------------------------------------------------------
for b in wes-api spectl; do
  [ -x "$bin_dir/$b" ] || missing "no $bin_dir/$b (build it first: cargo build -p wes-api -p spectl, or set SPE_BIN_DIR)"
done
# Debian keeps PostgreSQL's client binaries of each major version in /usr/lib/postgresql/<v>/bin.
pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n1)
if [ -z "$pg_bin" ] && command -v pg_dump >/dev/null; then pg_bin=$(dirname "$(command -v pg_dump)"); fi
for b in psql pg_dump pg_restore; do
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/$b" ]; then missing "no PostgreSQL client $b (apt-get install postgresql)"; fi
done
admin_url=${SPE_TEST_POSTGRES_URL:-}
if [ -z "$admin_url" ]; then
  admin_url=$(tests/peers/postgres.sh start) || missing "the PostgreSQL test peer did not start (tests/peers/postgres.sh start)"
fi
sql() { # sql URL STATEMENT...: each statement in psql, stops at the first error
  local url=$1
  shift
  local args=()
  for s in "$@"; do args+=(-c "$s"); done
  "$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$url" "${args[@]}"
}
sql "$admin_url" "SELECT 1" >/dev/null || missing "PostgreSQL does not answer at its test URL"
db_url() { echo "${admin_url%/*}/$1"; }
new_database() { # new_database NAME: a fresh, empty database, named in $db (dropped on exit)
  db="spe_br_$$_$1"
  databases+=("$db")
  sql "$admin_url" "SET client_min_messages = warning" "DROP DATABASE IF EXISTS $db WITH (FORCE)" "CREATE DATABASE $db" >/dev/null
}

# --- wes-api ---------------------------------------------------------------------------------
# The dev config with the overrides the test suites use: no authentication (one local user with
# every role), no Slurm (runs stay QUEUED), JSON logs, a data folder of its own.
api_env=(SPE__AUTH=disabled SPE__SLURM__ENABLED=false SPE__LOGGING__FORMAT=json
  SPE__DATA_DIR="$work/runs" SPE__SERVER__LISTEN=127.0.0.1:0 SPE__SERVER__WORKERS=1)
# start_api NAME DATABASE: the real binary on the dev config and that database, 127.0.0.1 on a
# free port (it prints the port as its first stdout line). Sets api_pid, base and api.
start_api() {
  local name=$1 db=$2 port=""
  : >"$work/$name.out"
  env "${api_env[@]}" SPE__DATABASE__URL="$(db_url "$db")" \
    "$bin_dir/wes-api" --config deploy/config/spe.dev.yaml --listen 127.0.0.1:0 \
    </dev/null >"$work/$name.out" 2>"$work/$name.log" &
  api_pid=$!
  pids+=("$api_pid")
  for _ in $(seq 200); do
    port=$(sed -n 's/^wes-api listening on port \([0-9]*\)$/\1/p' "$work/$name.out")
    [ -n "$port" ] && break
    kill -0 "$api_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || die "wes-api ($name) did not start on database $db"
  base=http://127.0.0.1:$port
  api=$base/ga4gh/wes/v1
  curl -fsS --max-time 5 "$base/healthz" >/dev/null || die "wes-api ($name) does not answer /healthz"
}
# stop_api NAME: SIGTERM, as systemd stops it; waits for the exit (it anchors the head first).
stop_api() {
  kill -TERM "$api_pid"
  for _ in $(seq 300); do kill -0 "$api_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$api_pid" 2>/dev/null && die "wes-api ($1) still runs 30 s after SIGTERM"
  local status=0
  wait "$api_pid" || status=$?
  [ "$status" -eq 0 ] || not_ok "wes-api ($1) exited $status on SIGTERM"
}
# call METHOD PATH [JSON]: the body on stdout; fails on an HTTP error.
call() {
  local code
  code=$(curl -sS --max-time 10 -o "$work/body" -w '%{http_code}' -X "$1" \
    -H 'content-type: application/json' "$api$2" ${3:+--data "$3"})
  cat "$work/body"
  [ "$code" -lt 400 ] || { echo "$1 $2: HTTP $code: $(cat "$work/body")" >&2; return 1; }
}
submit() { # submit TAG: a run of quals@1.0.0 as multipart/form-data; prints its id
  curl -fsS --max-time 10 -X POST "$api/runs" \
    -F workflow_type=SMK -F workflow_type_version=9 -F workflow_url=quals@1.0.0 \
    -F 'workflow_params={"dataset": "quals-demo", "min_qual": 30}' \
    -F "tags={\"backup-restore\": \"$1\"}" | jq -er .run_id
}
spectl() { # the real spectl against the current wes-api; auth off, so no token at all
  env -u SPE_TOKEN SPE_URL="$base" SPE_TOKEN_FILE="$work/no-tokens.json" "$bin_dir/spectl" "$@"
}
# What the API shows, with this instance's address replaced (it differs between instances).
snapshot() {
  local out=$1 id
  {
    echo "# runs"
    call GET "/runs?page_size=100" | jq -S .
    for id in $(call GET "/runs?page_size=100" | jq -r '.runs[].run_id' | sort); do
      echo "# run $id"
      call GET "/runs/$id" | jq -S .
    done
    echo "# workflows"
    call GET /admin/workflows | jq -S .
    echo "# datasets"
    call GET /admin/datasets | jq -S .
    echo "# state counts"
    call GET /service-info | jq -S .system_state_counts
  } | sed "s#$base#BASE#g" >"$out"
}
# The text of the service's own verification of the chain (the web UI's audit page).
ui_verification() {
  curl -fsS --max-time 10 "$base/ui/audit/verification" |
    tr '\n' ' ' | sed -n 's#.*<p id="chain-status"[^>]*>\([^<]*<strong>[^<]*</strong>[^<]*\)</p>.*#\1#p' | sed 's#<[^>]*>##g; s/  */ /g; s/^ //; s/ $//'
}
# The head of the last `audit chain anchor` line wes-api logged (JSON logs), as SEQ:SHA256.
logged_anchor() {
  jq -Rr 'fromjson? | select(.target == "spe_audit" and .fields.message == "audit chain anchor")
    | "\(.fields.seq):\(.fields.sha256)"' "$work/$1.log" | tail -n1
}

# --- 1. a deployment with audit records ------------------------------------------------------
echo "== 1. wes-api on a fresh PostgreSQL database; records made through the API"
new_database source
source_db=$db
start_api source "$source_db"
call POST /admin/workflows "{\"source_dir\": \"$root/workflows/quals\"}" >/dev/null
call POST /admin/workflows/quals/1.0.0/approve '{}' >/dev/null
# A second version, registered, approved and retired: the registry then holds every state.
cp -r workflows/quals "$work/quals-old"
sed -i 's/^version: .*/version: 0.9.0/' "$work/quals-old/workflow.yaml"
grep -q '^version: 0.9.0$' "$work/quals-old/workflow.yaml" || die "could not make version 0.9.0 of quals"
call POST /admin/workflows "{\"source_dir\": \"$work/quals-old\"}" >/dev/null
call POST /admin/workflows/quals/0.9.0/approve '{}' >/dev/null
call POST /admin/workflows/quals/0.9.0/retire '{"reason": "superseded by 1.0.0"}' >/dev/null
call POST /admin/datasets "{\"id\": \"quals-demo\", \"description\": \"synthetic variant calls\", \"location\": \"$root/workflows/quals/data\", \"crypt4gh\": false}" >/dev/null
submit one >/dev/null
submit two >/dev/null
run3=$(submit three)
call POST "/runs/$run3/cancel" >/dev/null
[ "$(call GET "/runs/$run3/status" | jq -r .state)" = CANCELED ] || die "run $run3 was not cancelled"

echo "== 2. what the API shows before the backup"
snapshot "$work/before.txt"
spectl audit export >"$work/audit-before.jsonl"
spectl --json audit verify >"$work/verify-before.json" || die "spectl audit verify fails before the backup"
head_before=$(jq -r '"\(.head.seq):\(.head.sha256)"' "$work/verify-before.json")
head_seq=${head_before%%:*}
echo "head before the backup: $head_before"
check_eq "the chain holds the 10 records made (2 versions registered, 2 approved, 1 retired, 1 dataset, 3 runs submitted, 1 ended)" \
  "$(jq -r .records "$work/verify-before.json")" 10
kinds=$(jq -r .kind "$work/audit-before.jsonl" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
check_eq "the records are of the kinds made" \
  "$kinds" "dataset.registered=1 run.ended=1 run.submitted=3 workflow.approved=2 workflow.registered=2 workflow.retired=1 "
check_eq "the snapshot has the three runs" \
  "$(grep -c '^# run ' "$work/before.txt")" 3

# --- 3. backup ---------------------------------------------------------------------------------
echo "== 3. pg_dump while wes-api serves, then wes-api stopped"
"$pg_bin/pg_dump" --format=custom --file="$work/spe.dump" "$(db_url "$source_db")"
check "pg_dump wrote a custom-format archive with the audit log's rows" \
  bash -c "'$pg_bin/pg_restore' --list '$work/spe.dump' | grep -q 'TABLE DATA public audit_log '"
stop_api source
anchor=$(logged_anchor source)
echo "anchor logged on shutdown: $anchor"
check_eq "the head wes-api logged on shutdown (the anchor kept outside the database) is the head before the backup" \
  "$anchor" "$head_before"

# --- 4. restore --------------------------------------------------------------------------------
echo "== 4. pg_restore into a fresh database; wes-api on it"
new_database restored
restored_db=$db
"$pg_bin/pg_restore" --exit-on-error --single-transaction --no-owner --no-privileges \
  --dbname="$(db_url "$restored_db")" "$work/spe.dump"
start_api restored "$restored_db"
check_eq "wes-api started on the restored database (migrations already applied, nothing to do): /readyz says database ok" \
  "$(curl -sS --max-time 10 "$base/readyz" | jq -r .checks.database)" ok
first_anchor=""
for _ in $(seq 50); do
  first_anchor=$(jq -Rr 'fromjson? | select(.target == "spe_audit" and .fields.message == "audit chain anchor") | "\(.fields.seq):\(.fields.sha256)"' "$work/restored.log" | head -n1)
  [ -n "$first_anchor" ] && break
  sleep 0.1
done
check_eq "wes-api on the restored database logged the anchored head as its first anchor" \
  "$first_anchor" "$anchor"
spectl audit verify >"$work/verify-restored.txt" 2>&1 || true
check "spectl audit verify: the restored chain verifies, at the same head" \
  grep -qx "audit chain verified: $head_seq records, head $head_before" "$work/verify-restored.txt"
check "spectl audit verify --anchor $anchor: the restored chain holds the anchor" \
  spectl audit verify --anchor "$anchor"
check_eq "the service's own walk (/ui/audit/verification) verifies the restored chain at the same head" \
  "$(ui_verification)" "Chain verified: $head_seq records, each following the one before; head $head_before"
spectl audit export >"$work/audit-restored.jsonl"
check "the exported audit chain is the same, record for record" \
  cmp "$work/audit-before.jsonl" "$work/audit-restored.jsonl"
snapshot "$work/restored.txt"
check "runs (with their full RunLogs), workflow registry, datasets and state counts are as before" \
  diff -u "$work/before.txt" "$work/restored.txt"
check "the append-only trigger was restored: an UPDATE of audit_log is refused" \
  bash -c "! '$pg_bin/psql' -X -q -v ON_ERROR_STOP=1 '$(db_url "$restored_db")' -c 'UPDATE audit_log SET kind = kind WHERE seq = 1' 2>'$work/update.err' && grep -q 'audit_log is append-only' '$work/update.err'"
run4=$(submit after-restore)
check_eq "a run submitted after the restore continues the chain from the anchored head" \
  "$(call GET "/admin/audit?after_seq=$head_seq&limit=10" | jq -r '.records[0] | "\(.seq) \(.kind) \(.run_id) \(.prev_sha256)"')" \
  "$((head_seq + 1)) run.submitted $run4 ${anchor#*:}"
check "spectl audit verify --anchor $anchor still passes with the new record" \
  spectl audit verify --anchor "$anchor"
stop_api restored
# Rolling a binary back after an upgrade: the database holds a migration this binary does not
# have (as a newer release would leave it), and wes-api refuses to start on it.
sql "$(db_url "$restored_db")" "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99999, 'a newer release', true, '\\x00', 1)"
status=0
timeout 60 env "${api_env[@]}" SPE__DATABASE__URL="$(db_url "$restored_db")" \
  "$bin_dir/wes-api" --config deploy/config/spe.dev.yaml --listen 127.0.0.1:0 \
  </dev/null >"$work/older.out" 2>"$work/older.log" || status=$?
check_eq "a database migrated by a newer release: this wes-api refuses to start, naming the migration" \
  "$status:$(tail -n1 "$work/older.log")" \
  "1:wes-api: database migration failed: migration 99999 was previously applied but is missing in the resolved migrations"

# --- 5. a tampered restore ---------------------------------------------------------------------
echo "== 5. the dump restored and tampered with as a database administrator could"
new_database tampered
tampered_db=$db
"$pg_bin/pg_restore" --exit-on-error --single-transaction --no-owner --no-privileges \
  --dbname="$(db_url "$tampered_db")" "$work/spe.dump"
start_api tampered "$tampered_db"
sql "$(db_url "$tampered_db")" "ALTER TABLE audit_log DISABLE TRIGGER USER" \
  "DELETE FROM audit_log WHERE seq = $head_seq"
check_eq "with the head deleted, a plain verify still passes (the chain is consistent, only shorter)" \
  "$(spectl audit verify 2>&1 | sed 's/, head .*//')" "audit chain verified: $((head_seq - 1)) records"
status=0
spectl audit verify --anchor "$anchor" >"$work/anchor.out" 2>"$work/anchor.err" || status=$?
check_eq "with the head deleted, verify --anchor exits 1 naming the missing anchored head" \
  "$status:$(cat "$work/anchor.err")" \
  "1:spectl: audit chain broken: the anchored head $anchor is missing: the chain ends at $((head_seq - 1)) (records deleted)"
changed=$(jq -r 'select(.kind == "dataset.registered") | .seq' "$work/audit-before.jsonl")
sql "$(db_url "$tampered_db")" \
  "UPDATE audit_log SET details = '{\"dataset\":\"another-cohort\",\"crypt4gh\":false,\"visa_required\":false}' WHERE seq = $changed"
status=0
spectl audit verify >"$work/verify.out" 2>"$work/verify.err" || status=$?
check_eq "with record $changed changed, spectl audit verify exits 1 naming it" \
  "$status:$(cat "$work/verify.err")" \
  "1:spectl: audit chain broken: record $changed was changed: its fields no longer give its SHA-256"
check_eq "with record $changed changed, the service's own walk names it too" \
  "$(ui_verification)" "Chain broken: record $changed was changed: its fields no longer give its SHA-256"
stop_api tampered
