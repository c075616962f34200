"""One GPU per running cell on a multi-GPU machine, without a scheduler's help.

Snakemake's `--resources gpu=N` bounds how many CUDA cells run at once but does not say which
GPU each gets. A cell claims a slot with an exclusive, non-blocking `flock` on a lock file per
(GPU, slot) and keeps the file open for its whole life; the kernel drops the lock when the
process ends, however it ends (exit, exception, SIGKILL), so a dead cell never holds a GPU.
`cells_per_gpu` > 1 packs several small cells on one GPU. The claim sets CUDA_VISIBLE_DEVICES
before torch initialises CUDA, so the cell sees its GPU as cuda:0.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from benchmark.device import NVIDIA_GPUS

DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-locks"


def visible_gpus() -> list[str]:
    """GPU ids a cell may choose from: CUDA_VISIBLE_DEVICES if set, else every GPU the driver lists."""
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    if preset is not None:
        return [gpu for gpu in preset.split(",") if gpu.strip()]
    if not os.path.isdir(NVIDIA_GPUS):
        return []
    return [str(i) for i in range(len(os.listdir(NVIDIA_GPUS)))]


class GpuClaim:
    """An exclusive claim on one slot of one GPU; hold the object as long as the GPU is used."""

    def __init__(self, gpu: str, handle) -> None:
        self.gpu = gpu
        self._handle = handle

    def release(self) -> None:
        self._handle.close()


def claim_gpu(gpus: list[str], lock_dir: Path = DEFAULT_LOCK_DIR, cells_per_gpu: int = 1,
              timeout_s: float = 3600.0, poll_s: float = 0.5) -> GpuClaim:
    """Claim a free (GPU, slot), preferring the least loaded GPU, and export CUDA_VISIBLE_DEVICES.

    Waits when every slot is taken (more cells than slots, e.g. a too large --resources gpu=N),
    and raises after `timeout_s`.
    """
    if not gpus:
        raise RuntimeError("no GPU to claim: CUDA_VISIBLE_DEVICES is empty and the driver lists none")
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for slot in range(cells_per_gpu):  # fill each GPU's first slot before any second one
            for gpu in gpus:
                handle = open(lock_dir / f"gpu{gpu}.slot{slot}.lock", "a+")  # noqa: SIM115 (held open on purpose)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                os.environ["CUDA_VISIBLE_DEVICES"] = gpu
                return GpuClaim(gpu, handle)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free GPU slot in {lock_dir} after {timeout_s:.0f} s; "
                               "is --resources gpu=N larger than the GPUs times cells_per_gpu?")
        time.sleep(poll_s)
