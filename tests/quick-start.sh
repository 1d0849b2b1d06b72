#!/usr/bin/env bash
# The README's first command, checked: runs `deploy/dev/up.sh` detached (SPE_DEV_DETACH=1) to its
# downloaded result, checks that result against the file the run wrote, then stops exactly
# what up.sh started (`deploy/dev/up.sh stop`, also when a check fails) and checks that the
# services are gone and that peers which were already running still are.
# .ci/run calls it after tests/run-all.sh, whose build and peers it reuses.
#
# Usage: tests/quick-start.sh   (SPE_DEV_LISTEN / SPE_DEV_METRICS_LISTEN as for up.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
listen=${SPE_DEV_LISTEN:-127.0.0.1:8080}
fail() { echo "quick start: $*" >&2; exit 1; }

running_before=()
for peer in slurm oidc s3; do
  tests/peers/"$peer".sh status >/dev/null 2>&1 && running_before+=("$peer")
done

stopped=0
stop() {
  [ "$stopped" = 1 ] && return 0
  stopped=1
  deploy/dev/up.sh stop
}
trap stop EXIT

SPE_DEV_DETACH=1 deploy/dev/up.sh

# The collaborator's download is byte for byte the file the workflow wrote in the run folder.
run_id=$(cat .spe-dev/last-run)
written=.spe-dev/runs/${run_id:0:4}/$run_id/results.csv
[ -s .spe-dev/results.csv ] || fail "nothing downloaded to .spe-dev/results.csv"
[ "$(head -n1 .spe-dev/results.csv)" = "sample,calls,mean_qual,min_qual,max_qual,passing" ] ||
  fail "results.csv has an unexpected header: $(head -n1 .spe-dev/results.csv)"
[ "$(wc -l <.spe-dev/results.csv)" -ge 2 ] || fail "results.csv has no rows"
cmp .spe-dev/results.csv "$written" || fail "the download differs from $written"
# Step 10: the result of the run on the Crypt4GH dataset left encrypted to the collaborator's
# key, and decrypts to the same table.
[ "$(head -c 8 .spe-dev/sealed/results.csv.c4gh)" = crypt4gh ] ||
  fail ".spe-dev/sealed/results.csv.c4gh is not a Crypt4GH file"
cmp .spe-dev/sealed/results.csv .spe-dev/results.csv ||
  fail "the decrypted results.csv of the encrypted run differs from the plaintext run's"
pids=$(cat .spe-dev/wes-api.pid .spe-dev/results-crawler.pid)

stop
for pid in $pids; do
  ! kill -0 "$pid" 2>/dev/null || fail "pid $pid still runs after deploy/dev/up.sh stop"
done
! curl -fsS --max-time 2 "http://$listen/readyz" >/dev/null 2>&1 || fail "$listen still answers"
for peer in "${running_before[@]}"; do
  tests/peers/"$peer".sh status >/dev/null 2>&1 || fail "peer $peer was running before and is gone"
done
echo "quick start: downloaded results.csv matches the run's, the encrypted run's decrypts to the same; everything up.sh started is stopped"
