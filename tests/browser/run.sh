#!/usr/bin/env bash
# The web UI's end-to-end tests in a real browser (docs/ui.md): starts the real stack with
# deploy/dev/up.sh (wes-api and results-crawler on the dev config, one-node Slurm, S3, the test
# OIDC provider) on 127.0.0.1:8089 — the provider's second registered redirect, so that port
# 8080 may be another checkout's —, runs tests/browser/ui.test.mjs in Debian's headless
# Chromium, writes screenshots to docs/ui/, and stops what up.sh started. It shares .spe-dev/
# with up.sh: a dev stack of this checkout is replaced.
#
# Chromium comes from Debian (`apt-get install chromium`; .ci/run installs it); playwright-core
# and axe-core from npm, pinned in package-lock.json (npm ci here when it changed). Without
# Chromium the suite prints SKIPPED and passes, except under CI, where it fails.
#
# Usage: tests/browser/run.sh     (tests/run-all.sh runs it)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
src=$root/tests/browser
chromium=${SPE_CHROMIUM:-/usr/bin/chromium}
listen=${SPE_UI_TEST_LISTEN:-127.0.0.1:8089}

if [ ! -x "$chromium" ]; then
  if [ -n "${CI:-}" ]; then
    echo "browser tests: FAILED: no Chromium at $chromium under CI (.ci/run installs Debian's chromium)" >&2
    exit 1
  fi
  echo "SKIPPED browser tests: no Chromium at $chromium (apt-get install chromium)"
  exit 0
fi
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "browser tests: node and npm are needed (tests/peers/oidc.sh installs them)" >&2
  exit 1
}
if [ ! -d "$src/node_modules/playwright-core" ] \
  || ! cmp -s "$src/package-lock.json" "$src/node_modules/.spe-lock"; then
  echo "browser tests: npm ci (playwright-core, axe-core)"
  (cd "$src" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$src/package-lock.json" "$src/node_modules/.spe-lock"
fi

# The stack, on the browser tests' port; its redirect URL follows (the config's is 8080's).
export SPE_DEV_LISTEN=$listen SPE_DEV_METRICS_LISTEN=${SPE_UI_TEST_METRICS_LISTEN:-127.0.0.1:9489}
export SPE__AUTH__OIDC__BROWSER__REDIRECT_URL="http://$listen/auth/callback"
log=$(mktemp)
pack=
cleanup() { deploy/dev/up.sh stop >/dev/null 2>&1 || true; rm -f "$log"; [ -z "$pack" ] || rm -rf "$pack"; }
trap cleanup EXIT
echo "browser tests: starting the stack on $listen (deploy/dev/up.sh)"
if ! SPE_DEV_DETACH=1 deploy/dev/up.sh >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "browser tests: FAILED: the stack did not come up" >&2
  exit 1
fi
issuer=$(tests/peers/oidc.sh url)
helper="http://127.0.0.1:$((${issuer##*:} + 2))"
# up.sh's run with its results.csv released Crypt4GH-encrypted, shared with the collaborators'
# group; the collaborator's key pair (its public half registered) and Python crypt4gh decrypt
# what the browser downloads.
# A new version of the example workflow for the controller to register from its tar.gz (a
# version of its own each time: the dev store keeps the earlier ones).
version=1.0.$(date +%s)
pack=$(mktemp -d)
cp -r workflows/quals "$pack/quals"
sed -i "s/^version: 1.0.0\$/version: $version/" "$pack/quals/workflow.yaml"
tar czf "$pack/quals.tar.gz" -C "$pack" quals
SPE_UI_NEW_VERSION=$version SPE_UI_WORKFLOW_TGZ=$pack/quals.tar.gz \
SPE_UI_URL="http://$listen" SPE_UI_OIDC_HELPER=$helper SPE_CHROMIUM=$chromium \
  SPE_UI_SEALED_RUN=$(cat .spe-dev/last-sealed-run) SPE_UI_CRYPT4GH="$(tests/peers/python-tools.sh)/crypt4gh" \
  SPE_UI_C4GH_KEY=$root/.spe-dev/collaborator-c4gh.sec SPE_UI_C4GH_PASS=$root/.spe-dev/collaborator-c4gh.pass \
  SPE_UI_PLAIN_RESULTS=$root/.spe-dev/results.csv \
  node "$src/ui.test.mjs"
echo "browser tests: passed"
