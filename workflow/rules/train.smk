# One job per cell (dataset, loss, samples per class, seed); each writes metrics.json last and
# logs one MLflow run. A CUDA cell on a multi-GPU machine claims its own GPU (benchmark/gpus.py);
# `--resources gpu=N` bounds how many run at once.


rule tracking_init:
    output:
        TRACKING,
    log:
        f"logs/tracking/{GRID}.log",
    conda:
        "../../environment.yml"
    params:
        python=PYTHON,
        grid=GRID,
    shell:
        # One job creates the store and the experiment before the fan-out: parallel first
        # writes to a fresh SQLite store race.
        "{params.python} -m benchmark tracking-init --grid {params.grid} --out {output} > {log} 2>&1"


rule train_cell:
    input:
        data="data/prepared/{dataset}",
        tracking=ancient(TRACKING),
        code=cell_code,
        embeddings=cell_embeddings,
    output:
        "results/cells/{dataset}/{loss}/spc{spc}/seed{seed}/metrics.json",
    log:
        "logs/cells/{dataset}/{loss}/spc{spc}/seed{seed}.log",
    conda:
        "../../environment.yml"
    wildcard_constraints:
        spc=r"[0-9]+|all",
        seed=r"[0-9]+",
    params:
        python=PYTHON,
        settings=cell_settings_json,
        device=config.get("device", "auto"),
        cells_per_gpu=config.get("cells_per_gpu", 1),
        # survives a failed or preempted job (it is not an output): the next run resumes from it
        checkpoint=lambda w: f"{cell_dir(w.dataset, w.loss, w.spc, w.seed)}/checkpoint.pt",
    threads: config.get("threads", 1)
    resources:
        gpu=1 if cuda_requested(config.get("device", "auto")) else 0,
    shell:
        "{params.python} -m benchmark train --dataset {wildcards.dataset} --loss {wildcards.loss}"
        " --spc {wildcards.spc} --seed {wildcards.seed} --settings {params.settings:q}"
        " --data {input.data} --out {output} --tracking {input.tracking}"
        " --device {params.device} --threads {threads} --cells-per-gpu {params.cells_per_gpu}"
        " --checkpoint {params.checkpoint} > {log} 2>&1"
