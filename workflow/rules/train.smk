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


# One job per cell, or with `seeds_per_job: N` one job per N seeds of a (dataset, loss, samples
# per class): a rule per group of seeds (train_seeds_0_1_2, ...), whose outputs are still one
# metrics.json per cell. Each job's seeds and checkpoints are read back from its outputs.
for seeds in seed_groups(config):

    rule:
        name:
            "train_cell" if seeds is None else "train_seeds_" + "_".join(map(str, seeds))
        input:
            data="data/prepared/{dataset}",
            tracking=ancient(TRACKING),
            code=cell_code,
            embeddings=cell_embeddings,
        output:
            cell_outputs(seeds),
        log:
            cell_log(seeds),
        conda:
            "../../environment.yml"
        wildcard_constraints:
            spc=r"[0-9]+|all",
            seed=r"[0-9]+",
        params:
            python=PYTHON,
            settings=cell_settings_json,
            seeds=lambda w, output: " ".join(Path(o).parent.name.removeprefix("seed") for o in output),
            device=config["device"],
            cells_per_gpu=config["cells_per_gpu"],
            # survive a failed or preempted job (they are not outputs): the next run resumes from them
            checkpoints=lambda w, output: " ".join(str(Path(o).parent / "checkpoint.pt") for o in output),
        threads: config["threads"]
        resources:
            gpu=1 if cuda_requested(config["device"]) else 0,
        shell:
            "{params.python} -m benchmark train --dataset {wildcards.dataset} --method {wildcards.method}"
            " --spc {wildcards.spc} --seed {params.seeds} --settings {params.settings:q}"
            " --data {input.data} --out {output} --tracking {input.tracking}"
            " --device {params.device} --threads {threads} --cells-per-gpu {params.cells_per_gpu}"
            " --checkpoint {params.checkpoints} > {log} 2>&1"
