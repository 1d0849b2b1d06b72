#!/usr/bin/env bash
# Sapporo's run script for the benchmark (tests/bench/http.sh): no Docker, no engine. Each run
# is recorded as Sapporo's own run.sh records one and completes at once, so what is measured is
# Sapporo's API and store, as for wes-api with Slurm off.
set -euo pipefail
run_dir=$1
now() { date -u +"%Y-%m-%dT%H:%M:%S"; }
echo "$$" > "$run_dir/run.pid"
now > "$run_dir/start_time.txt"
echo RUNNING > "$run_dir/state.txt"
: > "$run_dir/stdout.log"
: > "$run_dir/stderr.log"
echo '[]' > "$run_dir/outputs.json"
echo 0 > "$run_dir/exit_code.txt"
now > "$run_dir/end_time.txt"
echo COMPLETE > "$run_dir/state.txt"
