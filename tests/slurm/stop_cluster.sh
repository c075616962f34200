#!/usr/bin/env bash
# Stop the daemons started by start_cluster.sh DIR (munged stays: it is shared and harmless).
dir=$(realpath -m "$1")
for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
done
# Remove our /etc/slurm/slurm.conf link: with a config whose controller is gone, every SLURM
# command (and so the Snakemake SLURM plugin, when it loads) waits seconds for a timeout.
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$dir/slurm.conf" ]; then
  rm -f /etc/slurm/slurm.conf
fi
exit 0
