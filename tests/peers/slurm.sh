#!/usr/bin/env bash
# One-node Slurm on localhost for tests (Debian's slurmctld/slurmd 22.05 + munge, no systemd,
# no cgroups, no slurmdbd: finished jobs are read with `sacct -c` from the jobcomp file).
#
# Usage: tests/peers/slurm.sh start|stop|status|stop-ctld|start-ctld
#   start       install if needed, start munge + slurmctld + slurmd, wait for the node; prints "slurm ready"
#   stop        cancel all jobs, stop slurmctld and slurmd (munge keeps running)
#   status      exit 0 if `sinfo` answers
#   stop-ctld   stop only slurmctld (to test a controller outage); jobs keep running
#   start-ctld  start slurmctld again and wait until it answers
#
# /etc/slurm/slurm.conf is written only if absent or written by this script (marker line below).
# A foreign slurm.conf is never touched: if that Slurm answers, `start` uses it as it is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CONF=/etc/slurm/slurm.conf
MARKER="# Written by tests/peers/slurm.sh (spe test peer); it may overwrite this file."
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
WAIT=${SPE_SLURM_WAIT:-60}

answers() { timeout 10 sinfo -h >/dev/null 2>&1; }
ours() { [ -f "$CONF" ] && grep -qxF "$MARKER" "$CONF"; }

write_conf() {
  local mem_mb tmp
  # Stay below what slurmd detects, or it drains the node for "Low RealMemory".
  mem_mb=$(awk '/^MemTotal:/ { print int($2 * 0.9 / 1024) }' /proc/meminfo)
  tmp=$(mktemp)
  cat >"$tmp" <<CONF
$MARKER
ClusterName=spe-test
SlurmctldHost=localhost(127.0.0.1)
# Bind to the addresses named here (127.0.0.1), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default each job claims the whole node's memory and jobs run one at a time.
DefMemPerCPU=512
# Keep finished jobs visible to squeue/scontrol for 5 min.
MinJobAge=300
KillWait=5
# Benchmarks queue ~2,000 jobs at once.
MaxJobCount=10000
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  if cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; return 0; fi
  log "writing $CONF"
  # Daemons started with an older config must pick up the new one.
  stop_daemons
  install -m 644 "$tmp" "$CONF" && rm -f "$tmp"
}

start_munge() {
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge: /run/munge
  if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 bash -c 'munge -n </dev/null | unmunge' || die "munged did not start"
  fi
}

start_ctld() {
  pid_alive "$CTLD_PID" || { log "starting slurmctld"; /usr/sbin/slurmctld; }
  wait_for "$WAIT" answers || { tail -n 20 /var/log/slurm/slurmctld.log >&2; die "slurmctld does not answer"; }
}

# Right after start the node is "unknown"; jobs must wait until it is usable.
# mixed/allocated count too: jobs may have survived a controller restart.
wait_node() {
  local state deadline=$((SECONDS + WAIT))
  while :; do
    state=$(timeout 10 sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
    case "$state" in idle | mixed | allocated) return 0 ;; esac
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 /var/log/slurm/slurmd.log >&2; die "node state '$state' after ${WAIT}s"; }
    sleep 0.5
  done
}

stop_daemons() {
  stop_pidfile "$SLURMD_PID" 15
  stop_pidfile "$CTLD_PID" 15
}

start() {
  # Jobs on this node run spe-runner, which starts every engine inside bubblewrap.
  command -v bwrap >/dev/null || apt_install bubblewrap
  if ! ours && command -v sinfo >/dev/null && answers; then
    log "using the Slurm that is already configured"; echo "slurm ready"; return 0
  fi
  if ! { command -v slurmctld && command -v slurmd && command -v sinfo && command -v munged; } >/dev/null; then
    apt_install slurmctld slurmd slurm-client munge
  fi
  if [ -f "$CONF" ] && ! ours; then
    die "$CONF was not written by this script and that Slurm does not answer; not touching it"
  fi
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  write_conf
  start_munge
  start_ctld
  pid_alive "$SLURMD_PID" || { log "starting slurmd"; /usr/sbin/slurmd -N localhost; }
  wait_node
  echo "slurm ready"
}

stop() {
  ours || { log "$CONF is not ours; leaving that Slurm alone"; return 0; }
  # Cancel first so no job outlives its slurmd or comes back on the next start.
  if pid_alive "$CTLD_PID" && answers; then
    squeue -h -o %i 2>/dev/null | xargs -r scancel --quiet 2>/dev/null || true
    # shellcheck disable=SC2016
    wait_for 15 bash -c '[ -z "$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %i)" ]' \
      || log "some jobs still running; stopping anyway"
  fi
  stop_daemons
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) command -v sinfo >/dev/null && answers ;;
  stop-ctld) ours || die "$CONF is not ours"; stop_pidfile "$CTLD_PID" 15 ;;
  start-ctld) ours || die "$CONF is not ours"; start_ctld; wait_node ;;
  *) echo "usage: $0 start|stop|status|stop-ctld|start-ctld" >&2; exit 2 ;;
esac
