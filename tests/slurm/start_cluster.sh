#!/usr/bin/env bash
# Start a one-node SLURM cluster on 127.0.0.1 (Debian's slurm-wlm + munge) for the tests.
# Usage: tests/slurm/start_cluster.sh DIR   -> writes DIR/slurm.conf, links it from
# /etc/slurm/slurm.conf (where job steps look for it, as on a real cluster), starts munged,
# slurmctld and slurmd. No accounting database: job status comes from squeue.
# Stop with tests/slurm/stop_cluster.sh DIR.
set -euo pipefail
dir=$(realpath -m "$1")
mkdir -p "$dir"/{state,spool,log}
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=bench
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# Keep finished jobs visible to squeue long enough for Snakemake's status checks.
MinJobAge=600
SchedulerParameters=defer
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
  echo "/etc/slurm/slurm.conf exists and is not ours; refusing to replace it" >&2
  exit 1
fi
ln -sfn "$dir/slurm.conf" /etc/slurm/slurm.conf
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then exit 0; fi
  sleep 0.5
done
echo "SLURM did not come up; logs in $dir/log" >&2
tail -20 "$dir"/log/*.log >&2 || true
exit 1
