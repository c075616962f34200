#!/usr/bin/env bash
# The GPU checks of this project, for a machine with CUDA; under 8 minutes; every figure as JSON in $OUT.
# With the device tool (it sets $OUT and copies this tree), carrying wheels of what its python lacks
# (see docs/performance.md, "On a GPU machine"):
#   run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=540)
# 1. the speed harness's throughput part on CUDA (our loop against the reference loop, bf16 and fp32,
#    channels_last, FLOPs and the fraction of bf16 peak; ResNet-110 and ResNet-50 at 448 px);
# 2. scripts/gpu_cells.py: short ResNet-50@448 and ResNet-110 cells through the real CLI on synthetic
#    data, bf16 against fp32 on the same cell, and the GPU claim across two processes;
# 3. the packing part of the harness (small cells per GPU-hour, 1 / 3 / 6 cells per job, no MLflow).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 BENCHMARK_GPU_CHECK=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia_smi.csv" 2>&1
python3 -c "import torch, json; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,
'device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))" > "$OUT/versions.json"
timeout 240 python3 -m perf --parts throughput --out "$OUT/perf" 2>&1 | tail -20
timeout 150 python3 scripts/gpu_cells.py --out "$OUT" 2>&1 | tail -20
timeout 60 python3 -m perf --parts packing --quick --set packing.tracking=false --out "$OUT/perf" 2>&1 | tail -10
ls -la "$OUT" "$OUT/perf" 2>/dev/null
