#!/usr/bin/env bash
# Python test tools in one venv: snakemake (the workflow engine under test), crypt4gh (GA4GH
# file encryption, the reference the project's Crypt4GH code is tested against), schemathesis
# (API conformance fuzzing against the OpenAPI spec), boto3 (to check S3 results), and the WES
# clients people use, driven by services/wes-api/tests/clients.rs: Galaxy's gxy-wes, wes-service's
# wes-client, ai4gh, and WESkit's weskit-client.
# Not awscli: every awscli 1.4x pins a docutils that snakemake 9 cannot use (pip: ResolutionImpossible).
#
# weskit-client 1.0.1 needs Python >= 3.12 (PEP 701 f-strings) while the main venv stays on
# Debian 12's 3.11, where the pins below were checked together. So, with --weskit, it gets a venv
# of its own on the Python of tests/peers/python312.sh (built from source on Debian 12: about
# 3 minutes, once), and its one program is linked into the main venv's bin dir, the one folder
# the tests are given. Opt-in, so that the other callers (deploy/dev/up.sh, the test helpers that
# run this script when SPE_TOOLS_BIN is unset) never wait for a compiler.
#
# Usage: tests/peers/python-tools.sh [--weskit]
#   Prints the main venv's bin dir (the only stdout line), e.g.
#   PATH="$(tests/peers/python-tools.sh --weskit):$PATH".
#   Venvs: ${SPE_TOOLS_VENV:-$HOME/.cache/spe/venv}, ${SPE_WESKIT_VENV:-$HOME/.cache/spe/venv-weskit}.
#   A second run skips pip (a stamp file in each venv).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

with_weskit=
case ${1:-} in
  "") ;;
  --weskit) with_weskit=1 ;;
  *) die "usage: $0 [--weskit]" ;;
esac

VENV=${SPE_TOOLS_VENV:-${HOME:?}/.cache/spe/venv}
WESKIT_VENV=${SPE_WESKIT_VENV:-${HOME:?}/.cache/spe/venv-weskit}
WESKIT_REQ="weskit-client==1.0.1"
# Checked together on Python 3.11: snakemake 9.27.1, schemathesis 4.32.5, boto3 1.4x.
REQS=(
  "snakemake>=9.27,<10"
  "schemathesis>=4.32,<5"
  "boto3>=1.40,<2"
  # The WES clients, pinned to the versions tests/clients.rs was written against (checked
  # together with the above on Python 3.11: pip check finds no conflict).
  "gxy-wes==0.1.0"
  "wes-service==5.0"
  "ai4gh==1.0.0"
  # Crypt4GH interoperability (services/spe-crypt4gh/tests/python.rs) and the decryption
  # benchmark's baseline (docs/benchmarks.md).
  "crypt4gh==1.8.6"
  # The SMTP sink of the notification tests (services/spe-notify/tests/delivery.rs).
  "aiosmtpd==1.4.6"
)
PY=${SPE_TOOLS_PYTHON:-python3}
command -v "$PY" >/dev/null || apt_install python3 python3-venv
# snakemake 9 needs Python >= 3.11 (Debian 12 ships 3.11).
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PY is older than 3.11"

# venv_up PYTHON VENV PROGRAM REQ...: VENV on PYTHON with the REQs, unless its stamp says so and
# PROGRAM is there.
venv_up() {
  local py=$1 venv=$2 program=$3 want; shift 3
  want="$("$py" -c 'import platform; print(platform.python_version())') $*"
  if [ -x "$venv/bin/$program" ] && [ "$(cat "$venv/.spe-requirements" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  # Debian's python3 has no ensurepip (hence no venv) without python3-venv.
  "$py" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  if [ ! -x "$venv/bin/python" ]; then
    log "creating venv $venv"
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv" >&2
  fi
  log "pip install $* (into $venv)"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
  echo "$want" >"$venv/.spe-requirements"
}

venv_up "$PY" "$VENV" snakemake "${REQS[@]}"

if [ -n "$with_weskit" ]; then
  py312=$("$(dirname "$0")/python312.sh") \
    || die "no weskit-client: tests/peers/python312.sh could not provide Python >= 3.12 (above)"
  venv_up "$py312" "$WESKIT_VENV" weskit-client "$WESKIT_REQ"
  # The script's shebang names the weskit venv's interpreter, so the link runs it there.
  ln -sfn "$WESKIT_VENV/bin/weskit-client" "$VENV/bin/weskit-client"
fi
echo "$VENV/bin"
