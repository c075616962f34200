# One job per pack: up to `seeds_per_job` runs (split, seed) of one (dataset, method, samples per class,
# settings key), trained one after the other (benchmark/packs.py). The cells' records are written beside
# the marker and are not outputs: a failed or preempted job never deletes a finished cell. Scheduling
# settings (device, cells_per_gpu, eval_batch_size) come from globals, not params, so that changing them
# reruns nothing. A CUDA job asks for `gpu=1` (bound it with --resources gpu=N).


rule train:
    input:
        data="data/prepared/{dataset}.json",
        code=pack_code,
        dependencies=pack_dependencies,
    output:
        "results/{root}/{dataset}/{method}/spc{spc}/{key}/{runs}.pack",
    log:
        "results/{root}/{dataset}/{method}/spc{spc}/{key}/{runs}.log",
    wildcard_constraints:
        root=r"cells|trials",
        dataset=r"[a-z0-9_]+",
        method=r"[a-z0-9_]+(-[A-Za-z0-9_]+)?",
        spc=r"[0-9]+|all",
        key=r"[0-9a-f]{10}",
        runs=r"split[0-9]+_seed[0-9]+(-[0-9]+)*(\+split[0-9]+_seed[0-9]+(-[0-9]+)*)*",
    params:
        spec=pack_spec,
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS,
    conda:
        "../../environment.yml"
    shell:
        # stdout: one line per finished cell (the console); per-epoch lines: each cell's cell.log;
        # how it runs (device, cells per GPU, ...): BENCHMARK_RUN (common.smk)
        "python -m benchmark train --pack {params.spec:q} --marker {output} --threads {threads}"
        " --receipt {input.data} 2> {log}"
