#!/usr/bin/env bash
# Python test tools in one venv: snakemake (the workflow engine under test), crypt4gh (GA4GH
# file encryption, the reference the project's Crypt4GH code is tested against), schemathesis
# (API conformance fuzzing against the OpenAPI spec), boto3 (to check S3 results), and the WES
# clients people use, driven by services/wes-api/tests/clients.rs: Galaxy's gxy-wes, wes-service's
# wes-client, ai4gh, and WESkit's weskit-client (which needs Python >= 3.12: it is left out on
# 3.11, and its test says so).
# Not awscli: every awscli 1.4x pins a docutils that snakemake 9 cannot use (pip: ResolutionImpossible).
#
# Usage: tests/peers/python-tools.sh
#   Prints the venv's bin dir (the only stdout line), e.g. PATH="$(tests/peers/python-tools.sh):$PATH".
#   Venv: ${SPE_TOOLS_VENV:-$HOME/.cache/spe/venv}. A second run skips pip (stamp file in the venv).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VENV=${SPE_TOOLS_VENV:-${HOME:?}/.cache/spe/venv}
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
# weskit-client 1.0.1 declares Python >= 3.12 and uses its f-string syntax (PEP 701).
if "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  REQS+=("weskit-client==1.0.1")
fi

STAMP=$VENV/.spe-requirements
want="$("$PY" -c 'import platform; print(platform.python_version())') ${REQS[*]}"
if [ -x "$VENV/bin/snakemake" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin"; exit 0
fi

# Debian's python3 has no ensurepip (hence no venv) without python3-venv.
"$PY" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV" >&2
fi
log "pip install ${REQS[*]}"
"$VENV/bin/pip" install -q --disable-pip-version-check "${REQS[@]}" >&2
echo "$want" >"$STAMP"
echo "$VENV/bin"
