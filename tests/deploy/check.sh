#!/usr/bin/env bash
# Deployment checks (issue 15; docs/operator-guide.md). Installs what it needs itself: a Python
# venv under ~/.cache/spe/ (tests/deploy/requirements.txt) and, only if missing, Debian's
# systemd (for systemd-analyze). Each check below fails the script when what it guards breaks:
#   1. ansible-playbook --syntax-check of ansible/site.yml with the BiBiGrid example inventory
#   2. ansible-lint, production profile (ansible/.ansible-lint): zero violations
#   3. systemd-analyze security --offline=yes: each unit in deploy/systemd/ below 3.0, with the
#      hardening directives the operator guide promises present; a unit stripped of its
#      hardening must score >= 3.0 (the threshold check itself is tested)
#   4. hadolint on each Containerfile, and check_containers.py (multi-stage, pinned bases,
#      non-root USER, no shell, compose wiring); a Containerfile with USER 0 must be refused
#   5. the jobs' ssh gate (ansible/roles/slurm_submit_host/files/slurm-gate): Slurm commands
#      only, arguments passed as wes-api quoted them, nothing expanded or chained
#   6. the S3 bucket policy template renders to JSON that gives the crawler no delete and the
#      API no write outside the audit anchor prefix
# Usage: tests/deploy/check.sh   (tests/run-all.sh calls it; about 30 s once the venv exists)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=tests/deploy
venv=${SPE_DEPLOY_VENV:-$HOME/.cache/spe/deploy-venv}
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- tools -------------------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "systemd-analyze missing; run as root or: apt-get install systemd" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if ! cmp -s "$here/requirements.txt" "$venv/.spe-requirements" 2>/dev/null; then
  echo "installing the deployment check tools into $venv (pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.spe-requirements"
fi
export PATH="$venv/bin:$PATH"
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"

# --- 1. syntax ----------------------------------------------------------------------------------
if (cd ansible && ansible-playbook --syntax-check -i inventory/bibigrid.example.yml site.yml) >"$work/syntax.log" 2>&1; then
  ok "ansible-playbook --syntax-check site.yml"
else
  cat "$work/syntax.log"; bad "ansible-playbook --syntax-check site.yml"
fi

# --- 2. lint ------------------------------------------------------------------------------------
if (cd ansible && ansible-lint --nocolor) >"$work/lint.log" 2>&1 \
  && grep -q "0 failure(s), 0 warning(s)" "$work/lint.log" && grep -q "Profile 'production' was required, and it passed" "$work/lint.log"; then
  ok "ansible-lint, production profile: $(grep -o '[0-9]* failure(s), [0-9]* warning(s) in [0-9]* files' "$work/lint.log")"
else
  cat "$work/lint.log"; bad "ansible-lint"
fi

# --- 3. units -----------------------------------------------------------------------------------
exposure() { # exposure UNITFILE: prints the overall exposure figure
  systemd-analyze security --offline=yes "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
required=(NoNewPrivileges=true ProtectSystem=strict ProtectHome=true PrivateTmp=true PrivateDevices=true
  CapabilityBoundingSet= SystemCallFilter=@system-service MemoryDenyWriteExecute=true
  RestrictAddressFamilies= ProtectKernelTunables=true ProtectKernelModules=true ProtectKernelLogs=true
  ProtectControlGroups=true ProtectClock=true ProtectHostname=true LockPersonality=true RestrictNamespaces=true
  SystemCallArchitectures=native UMask= RestrictSUIDSGID=true EnvironmentFile=/etc/spe/)
for unit in wes-api results-crawler; do
  f=deploy/systemd/$unit.service
  e=$(exposure "$f")
  if [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e < 3.0) }'; then ok "$unit.service exposure $e (< 3.0)"; else bad "$unit.service exposure '${e:-none}' (must be < 3.0)"; fi
  missing=()
  for d in "${required[@]}"; do grep -q "^$d" "$f" || missing+=("$d"); done
  [ "${#missing[@]}" -eq 0 ] && ok "$unit.service has every promised directive" || bad "$unit.service lacks ${missing[*]}"
  grep -Eq '^User=spe-(api|crawler)$' "$f" && ok "$unit.service runs as its own account" || bad "$unit.service: User= is not its own account"
done
grep -q '^ReadWritePaths=' deploy/systemd/results-crawler.service && bad "results-crawler.service may write paths" || ok "results-crawler.service writes nothing but its state folder"
# The threshold check must catch a unit without its hardening.
grep -vE '^(Protect|Private|NoNew|Capability|SystemCall|Restrict|Memory|Lock|Device|UMask|Remove|Keyring|ProcSubset|ReadWrite|ReadOnly|Inaccessible|AmbientCap)' \
  deploy/systemd/wes-api.service >"$work/wes-api.service"
e=$(exposure "$work/wes-api.service")
awk -v e="${e:-0}" 'BEGIN { exit !(e >= 3.0) }' && ok "a unit stripped of its hardening scores $e (>= 3.0: refused)" || bad "stripped unit scored '${e:-none}'"

# --- 4. containers ------------------------------------------------------------------------------
for f in deploy/containers/*.Containerfile; do
  if hadolint "$f" >"$work/hadolint.log" 2>&1; then ok "hadolint $f"; else cat "$work/hadolint.log"; bad "hadolint $f"; fi
done
if python3 "$here/check_containers.py" deploy/containers; then ok "container files and compose.yaml"; else bad "container files and compose.yaml"; fi
cp -r deploy/containers "$work/containers-root"
sed -i 's/^USER 64711:64711/USER 0/' "$work/containers-root/results-crawler.Containerfile"
if python3 "$here/check_containers.py" "$work/containers-root" >/dev/null; then bad "a root USER passed check_containers.py"; else ok "check_containers.py refuses a root USER"; fi

# --- 5. the jobs' ssh gate ----------------------------------------------------------------------
gate=ansible/roles/slurm_submit_host/files/slurm-gate
q() { # q WORD: quoted as wes-api's quote_for_shell does
  if [[ -n $1 && $1 =~ ^[A-Za-z0-9._/=:,@%+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
g() { SSH_ORIGINAL_COMMAND=$1 LC_ALL=C bash "$gate"; }
[ "$(g "id -un")" = "$(id -un)" ] && ok "gate runs an allowed command" || bad "gate: id -un"
# A copy that prints the words it would run shows how the command line was split.
sed 's/^exec "\${words\[@\]}"$/printf "<%s>\\n" "${words[@]}"/' "$gate" >"$work/gate-print"
grep -q '^printf' "$work/gate-print" || bad "gate: its exec line changed; update this test"
word="a b'c \$(touch $work/pwned) \`x\` \"d\" \\e"
out=$(SSH_ORIGINAL_COMMAND="sbatch --chdir=/r/1 $(q "$word") $(q "")" bash "$work/gate-print")
[ "$out" = "$(printf '<%s>\n' sbatch --chdir=/r/1 "$word" "")" ] && ok "gate passes quoted arguments as wes-api quoted them" || bad "gate split or expanded: $out"
g "rm -rf $work" >/dev/null 2>&1 && bad "gate ran rm" || { [ -d "$work" ] && ok "gate refuses a command that is not Slurm's"; }
g "id -un; touch $work/chained" >/dev/null 2>&1 || true
g "id \$(touch $work/expanded)" >/dev/null 2>&1 || true
g "id -un && touch $work/and" >/dev/null 2>&1 || true
[ ! -e "$work/chained" ] && [ ! -e "$work/expanded" ] && [ ! -e "$work/and" ] && [ ! -e "$work/pwned" ] &&
  ok "gate chains and expands nothing" || bad "gate ran a chained or expanded command"
g "" >/dev/null 2>&1 && bad "gate ran an empty command" || ok "gate refuses an empty command"
g $'id\ntouch '"$work/nl" >/dev/null 2>&1 || true
[ ! -e "$work/nl" ] && ok "gate refuses a multi-line command" || bad "gate ran a second line"

# --- 6. the bucket policy -----------------------------------------------------------------------
if python3 - "$work" <<'PY'
import json, sys, yaml, jinja2
d = yaml.safe_load(open("ansible/roles/s3_results/defaults/main.yml"))
t = jinja2.Template(open("ansible/roles/s3_results/templates/bucket-policy.json.j2").read())
for variant in ({}, {"s3_results_anchor_prefix": "", "s3_results_api_may_delete": False}):
    v = dict(d, **variant)
    p = json.loads(t.render(**v))
    def allowed(principal):
        acts = set()
        for s in p["Statement"]:
            if s["Effect"] == "Allow" and principal in s["Principal"]["AWS"]:
                acts |= {(a, r) for a in s["Action"] for r in s["Resource"]}
        return acts
    crawler, api = allowed(v["s3_results_crawler_principal"]), allowed(v["s3_results_api_principal"])
    b = v["s3_results_bucket"]
    assert ("s3:PutObject", f"arn:aws:s3:::{b}/*") in crawler, "crawler cannot write"
    assert not any(a.startswith("s3:Delete") or a == "s3:ListBucket" for a, _ in crawler), "crawler may delete or list"
    puts = {r for a, r in api if a == "s3:PutObject"}
    want = {f"arn:aws:s3:::{b}/{v['s3_results_anchor_prefix']}/*"} if v["s3_results_anchor_prefix"] else set()
    assert puts == want, f"API writes {puts}"
    assert ("s3:GetObject", f"arn:aws:s3:::{b}/*") in api, "API cannot read for presigning"
    assert all(s["Principal"] != "*" for s in p["Statement"] if s["Effect"] == "Allow"), "public Allow"
PY
then ok "bucket policy: crawler writes and never deletes, API reads and writes only anchors, nothing public"
else bad "bucket policy template"; fi

echo
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
