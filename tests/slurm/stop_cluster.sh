#!/usr/bin/env bash
# Stop the daemons started by start_cluster.sh DIR (munged stays: it is shared and harmless).
dir=$(realpath -m "$1")
for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
done
exit 0
