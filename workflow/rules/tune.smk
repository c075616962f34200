# The tuned protocol (benchmark/tuning.py), for grids with a `tune:` block. For each (dataset, method,
# samples per class) one selection: with `strategy: grid` from its trials, which are ordinary packs of
# rule `train` under results/trials/ (cached, resumable, SLURM-friendly); with `strategy: halving` by one
# job that runs successive halving over the same trials. The final cells' packs wait for their
# selection (pack_dependencies) and train with its values.
from benchmark.tuning import tuning_spec


rule select:
    input:
        data="data/prepared/{dataset}.json",
        trials=tuning_inputs,
        code=lambda w: code_input(["benchmark.tuning", *cell_roots(GRID.tuning(w).trials[0].settings)]),
    output:
        selection="results/tuning/{dataset}/{method}/spc{spc}/{key}/selection.json",
        table="results/tuning/{dataset}/{method}/spc{spc}/{key}/trials.csv",
    log:
        "results/tuning/{dataset}/{method}/spc{spc}/{key}/select.log",
    wildcard_constraints:
        dataset=r"[a-z0-9_]+",
        method=r"[a-z0-9_]+(-[A-Za-z0-9_]+)?",
        spc=r"[0-9]+|all",
        key=r"[0-9a-f]{10}",
    params:
        spec=lambda w: json.dumps(tuning_spec(GRID.tuning(w), config["tune"], f"data/prepared/{w.dataset}"),
                                  sort_keys=True),
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS if config.get("tune", {}).get("strategy") == "halving" else 0,
    conda:
        "../../environment.yml"
    shell:
        "python -m benchmark select --spec {params.spec:q} --threads {threads} --receipt {input.data} 2> {log}"
