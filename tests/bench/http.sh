#!/usr/bin/env bash
# The HTTP benchmark: wes-api (the binary, bearer JWTs from the OIDC test provider, SQLite,
# Slurm off) beside Sapporo 2.4.0 (the GA4GH WES reference implementation, one uvicorn worker,
# no authentication, tests/bench/sapporo-run.sh instead of Docker) under the same load, in one
# run on one machine. Installs wrk (Debian) and Sapporo (PyPI, a venv of its own), starts the
# OIDC test provider if needed, then runs `spe-bench http` (services/spe-bench/src/http.rs),
# which prints the table recorded in docs/benchmarks.md.
#
# Usage: tests/bench/http.sh            the recorded figures: release build, 1,000 runs stored,
#                                       3 x 10 s per row, a 1,000,000-run store (about 15 min)
#        tests/bench/http.sh --short    the small run tests/run-all.sh makes so the harness
#                                       cannot rot: the debug build, small sizes, every request
#                                       must succeed (speed is not judged)
# Further options go to `spe-bench http` (--runs, --reps, --seconds, --burst, --large-store).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
short=false
for arg in "$@"; do [ "$arg" = --short ] && short=true; done

if ! command -v wrk >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
venv=${SPE_SAPPORO_VENV:-$HOME/.cache/spe/sapporo-venv}
if [ ! -x "$venv/bin/sapporo" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check sapporo==2.4.0
fi
SPE_TEST_OIDC_URL=${SPE_TEST_OIDC_URL:-$(tests/peers/oidc.sh start)}
export SPE_TEST_OIDC_URL

if $short; then
  profile=debug
  cargo build -q --locked -p wes-api -p spe-bench
else
  profile=release
  cargo build -q --locked --release -p wes-api -p spe-bench
fi
exec "target/$profile/spe-bench" http --wes-api "target/$profile/wes-api" \
  --sapporo "$venv/bin/sapporo" "$@"
